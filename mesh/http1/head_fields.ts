/**
 * A parsed head's field table and everything that reads it: the field kinds the parser acts
 * on, the {@linkcode ParsedHead} class that decodes names and values only when they are read,
 * the meaning of the framing and connection fields (RFC 9112 sections 6 and 7, RFC 9110
 * section 7.6.1: Content-Length and Transfer-Encoding rules, keep-alive, upgrade, Host,
 * hop-by-hop fields), and lookups by name that compare bytes instead of decoding.
 *
 * Constants used in the per-byte and per-field loops stay private to the module that loops:
 * V8 folds a module's own constants into optimized code, but reads an exported or imported
 * one from its cell at every use, which measurably slowed head parsing.
 * @module
 */
import { HttpParseError } from "./errors.ts";
import type { HeadLimits, HttpHead, RequestHead, ResponseHead } from "./head_types.ts";
import { latin1 } from "./head_bytes.ts";

/** Most decimal digits accepted in a Content-Length (keeps it a safe integer). */
const MAX_CONTENT_LENGTH_DIGITS = 15;

/** Lower-cases an ASCII byte; other bytes are returned as they are. */
function _lowerByte(b: number): number {
  return b >= 65 && b <= 90 ? b + 32 : b;
}

/**
 * Whether `buf[p, p + lit.length)` equals `lit` ignoring ASCII case. `lit` must be lower-case
 * letters, digits and `-` only: then `| 0x20` can only confuse a byte with a control byte or
 * CR, which never reach this point (field names are tchar, values exclude controls).
 */
function _eqLower(buf: Uint8Array, p: number, lit: string): boolean {
  for (let i = 0; i < lit.length; i++) {
    if ((buf[p + i]! | 0x20) !== lit.charCodeAt(i)) return false;
  }
  return true;
}

/** Numbers stored per field in a head's field table. */
const FIELD_STRIDE = 5;
/** Field table slots: line start, the colon, value start and end (trimmed), field kind. */
const F_LINE = 0;
const F_COLON = 1;
const F_VS = 2;
const F_VE = 3;
const F_KIND = 4;

/** Field kinds the parser itself acts on; everything else is K_OTHER. */
const K_OTHER = 0;
const K_CONTENT_LENGTH = 1;
const K_TRANSFER_ENCODING = 2;
const K_CONNECTION = 3;
const K_UPGRADE = 4;
const K_HOST = 5;
const K_EXPECT = 6;
/** Hop-by-hop by name alone: keep-alive, te, trailer and any proxy-* field. */
const K_HOP = 7;
/**
 * Fields a caller could use to pose as someone else to the app (client certificate, caller
 * id, forwarded peer, `Forwarded`) or to change the method after authorization
 * (method-override fields): the callee's proxy drops them.
 */
const K_IDENTITY = 8;
/** `x-forwarded-for`: merged into the one list the proxy sends. */
const K_XFF = 9;
/** `x-skein-capability`: the mesh router routes by it (flagged, not interpreted, here). */
const K_CAPABILITY = 10;
/** Fields the record layer reads: `traceparent`, `b3`, `x-b3-traceid`, `x-request-id`. */
const K_RECORDED = 11;
/** Kinds that {@linkcode dropRewrittenFields} acts on. */
const FORWARDING_KINDS = (1 << K_IDENTITY) | (1 << K_XFF);
/** Kinds that are hop-by-hop whatever Connection says (STATIC_HOP plus the proxy- prefix). */
const HOP_KINDS = (1 << K_CONNECTION) | (1 << K_UPGRADE) | (1 << K_HOP);

/** Classifies a field name `buf[p, q)` without decoding it. */
export function fieldKind(buf: Uint8Array, p: number, q: number): number {
  switch (q - p) {
    case 2:
      if (_eqLower(buf, p, "te")) return K_HOP;
      if (_eqLower(buf, p, "b3")) return K_RECORDED;
      break;
    case 4:
      if (_eqLower(buf, p, "host")) return K_HOST;
      break;
    case 6:
      if (_eqLower(buf, p, "expect")) return K_EXPECT;
      break;
    case 7:
      if (_eqLower(buf, p, "upgrade")) return K_UPGRADE;
      if (_eqLower(buf, p, "trailer")) return K_HOP;
      break;
    case 9:
      if (_eqLower(buf, p, "forwarded")) return K_IDENTITY;
      break;
    case 10:
      if (_eqLower(buf, p, "connection")) return K_CONNECTION;
      if (_eqLower(buf, p, "keep-alive")) return K_HOP;
      break;
    case 11:
      if (_eqLower(buf, p, "traceparent")) return K_RECORDED;
      break;
    case 12:
      if (_eqLower(buf, p, "x-request-id")) return K_RECORDED;
      if (_eqLower(buf, p, "x-b3-traceid")) return K_RECORDED;
      break;
    case 13:
      if (_eqLower(buf, p, "x-http-method")) return K_IDENTITY;
      break;
    case 14:
      if (_eqLower(buf, p, "content-length")) return K_CONTENT_LENGTH;
      if (_eqLower(buf, p, "x-skein-caller")) return K_IDENTITY;
      break;
    case 15:
      if (_eqLower(buf, p, "x-forwarded-for")) return K_XFF;
      break;
    case 17:
      if (_eqLower(buf, p, "transfer-encoding")) return K_TRANSFER_ENCODING;
      if (_eqLower(buf, p, "x-method-override")) return K_IDENTITY;
      break;
    case 18:
      if (_eqLower(buf, p, "x-skein-capability")) return K_CAPABILITY;
      break;
    case 22:
      if (_eqLower(buf, p, "x-skein-forwarded-peer")) return K_IDENTITY;
      if (_eqLower(buf, p, "x-http-method-override")) return K_IDENTITY;
      break;
    case 23:
      if (_eqLower(buf, p, "x-forwarded-client-cert")) return K_IDENTITY;
      break;
  }
  if (q - p >= 6 && _eqLower(buf, p, "proxy-")) return K_HOP;
  return K_OTHER;
}

/** Whether the field name `buf[p, q)`, lower-cased, equals `name`. */
function _nameIs(buf: Uint8Array, p: number, q: number, name: string): boolean {
  if (q - p !== name.length) return false;
  for (let i = 0; i < name.length; i++) {
    if (_lowerByte(buf[p + i]!) !== name.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * A parsed head. Field names and values are decoded only when read: the parser needs just the
 * framing and connection fields, and most proxied heads are forwarded as bytes. One class
 * serves requests and responses (each ignores the other's fields): a single shape keeps the
 * hot path monomorphic and avoids the cost of derived-class construction.
 */
export class ParsedHead implements RequestHead, ResponseHead {
  raw: Uint8Array;
  start: number;
  end: number;
  firstLineEnd: number;
  versionMinor = 1;
  hasHopByHop = false;
  contentLength = -1;
  chunked = false;
  otherTransferCoding = false;
  keepAlive = true;
  upgrade = false;
  hasObsText = false;
  contentLengthListed = false;
  forwardingFields = false;
  /** FIELD_STRIDE numbers per field, in order; see F_LINE and the slots after it. */
  _f: number[] = [];
  _names: string[] | null = null;
  _values: string[] | null = null;
  _hop: boolean[] | null = null;
  method = "";
  target = "";
  targetRewritten: boolean | undefined = undefined;
  host: string | null = null;
  expectContinue = false;
  asksCapability = false;
  recordedFields = false;
  status = 0;
  /** Where the reason phrase is in `raw`, decoded on first read. */
  _rs = 0;
  _re = 0;
  _reason: string | null = null;

  constructor(raw: Uint8Array, start: number, end: number) {
    this.raw = raw;
    this.start = start;
    this.end = end;
    this.firstLineEnd = start;
  }

  get names(): string[] {
    if (this._names === null) {
      const f = this._f;
      const out: string[] = [];
      for (let o = 0; o < f.length; o += FIELD_STRIDE) {
        out.push(latin1(this.raw, f[o + F_LINE]!, f[o + F_COLON]!).toLowerCase());
      }
      this._names = out;
    }
    return this._names;
  }

  get values(): string[] {
    if (this._values === null) {
      const f = this._f;
      const out: string[] = [];
      for (let o = 0; o < f.length; o += FIELD_STRIDE) {
        out.push(latin1(this.raw, f[o + F_VS]!, f[o + F_VE]!));
      }
      this._values = out;
    }
    return this._values;
  }

  get lineStarts(): number[] {
    const f = this._f;
    const out: number[] = [];
    for (let o = 0; o < f.length; o += FIELD_STRIDE) out.push(f[o + F_LINE]!);
    return out;
  }

  get lineEnds(): number[] {
    // Field lines are contiguous: each ends where the next starts, the last at the blank line.
    const f = this._f;
    const out: number[] = [];
    for (let o = FIELD_STRIDE; o < f.length; o += FIELD_STRIDE) out.push(f[o + F_LINE]!);
    if (f.length > 0) out.push(this.end - 2);
    return out;
  }

  get reason(): string {
    this._reason ??= latin1(this.raw, this._rs, this._re);
    return this._reason;
  }

  get hop(): boolean[] {
    // Kept once created: callers mark extra fields hop-by-hop by writing into it.
    this._hop ??= new Array<boolean>(this._f.length / FIELD_STRIDE).fill(false);
    return this._hop;
  }
}

/** Splits a comma-separated list into trimmed, lower-cased, non-empty members. */
function _tokens(v: string, out: string[]): void {
  for (const part of v.split(",")) {
    const t = part.trim().toLowerCase();
    if (t !== "") out.push(t);
  }
}

/**
 * Reads a Content-Length that is only digits, or returns -1 so the general rule (a list of
 * identical values, trimmed) decides. Up to MAX_CONTENT_LENGTH_DIGITS digits is exact.
 */
function _plainDigits(buf: Uint8Array, vs: number, ve: number): number {
  if (ve <= vs || ve - vs > MAX_CONTENT_LENGTH_DIGITS) return -1;
  let n = 0;
  for (let i = vs; i < ve; i++) {
    const d = buf[i]! - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** Applies one Content-Length value as a string (lists, odd whitespace, errors). */
function _contentLengthList(head: ParsedHead, v: string): void {
  // Forwarded as is, "5, 5" could be read differently by the next hop: send one value.
  head.contentLengthListed = true;
  // "5, 5" and repeated identical fields are allowed; any disagreement is not.
  for (const part of v.split(",")) {
    const t = part.trim();
    if (t.length === 0 || t.length > MAX_CONTENT_LENGTH_DIGITS || !/^[0-9]+$/.test(t)) {
      throw new HttpParseError("bad_content_length", 400, `invalid Content-Length "${v}"`);
    }
    _contentLength(head, Number(t));
  }
}

/** Records a declared length; a second, different one is a smuggling attempt. */
function _contentLength(head: ParsedHead, len: number): void {
  if (head.contentLength !== -1) {
    if (head.contentLength !== len) {
      throw new HttpParseError(
        "conflicting_content_length",
        400,
        `Content-Length ${head.contentLength} vs ${len}`,
      );
    }
    head.contentLengthListed = true;
  }
  head.contentLength = len;
}

/** Kinds whose values `_semantics` reads. */
const SEMANTIC_KINDS = (1 << K_CONTENT_LENGTH) | (1 << K_TRANSFER_ENCODING) |
  (1 << K_CONNECTION) | (1 << K_UPGRADE) | (1 << K_HOST);

/**
 * Applies the semantics of framing and connection fields; marks hop-by-hop ones.
 * `seen` is the kind set from `_fields`. Returns the (last) Host value for requests.
 */
export function applySemantics(
  head: ParsedHead,
  limits: HeadLimits,
  isRequest: boolean,
  seen: number,
): string | null {
  const buf = head.raw;
  const f = head._f;
  let connection: string[] | null = null;
  let te: string[] | null = null;
  let host: string | null = null;
  let hostCount = 0;
  let upgradeField = false;
  if ((seen & SEMANTIC_KINDS) !== 0) {
    for (let o = 0; o < f.length; o += FIELD_STRIDE) {
      const kind = f[o + F_KIND]!;
      if (kind === K_OTHER) continue;
      const vs = f[o + F_VS]!;
      const ve = f[o + F_VE]!;
      switch (kind) {
        case K_CONTENT_LENGTH: {
          const len = _plainDigits(buf, vs, ve);
          if (len === -1) _contentLengthList(head, latin1(buf, vs, ve));
          else _contentLength(head, len);
          break;
        }
        case K_TRANSFER_ENCODING:
          te ??= [];
          if (ve - vs === 7 && _eqLower(buf, vs, "chunked")) te.push("chunked");
          else _tokens(latin1(buf, vs, ve), te);
          break;
        case K_CONNECTION:
          connection ??= [];
          if (ve - vs === 5 && _eqLower(buf, vs, "close")) connection.push("close");
          else if (ve - vs === 10 && _eqLower(buf, vs, "keep-alive")) {
            connection.push("keep-alive");
          } else _tokens(latin1(buf, vs, ve), connection);
          break;
        case K_UPGRADE:
          upgradeField = true;
          break;
        case K_HOST:
          if (isRequest) host = latin1(buf, vs, ve);
          hostCount++;
          break;
      }
    }
  }
  if (te !== null) {
    if (head.contentLength !== -1) {
      throw new HttpParseError(
        "content_length_and_transfer_encoding",
        400,
        "both Content-Length and Transfer-Encoding present",
      );
    }
    if (isRequest && head.versionMinor === 0) {
      throw new HttpParseError(
        "unsupported_transfer_encoding",
        400,
        "Transfer-Encoding in HTTP/1.0",
      );
    }
    const chunkedAt = te.indexOf("chunked");
    if (chunkedAt !== -1 && chunkedAt !== te.length - 1) {
      throw new HttpParseError("chunked_not_final", 400, "chunked is not the final coding");
    }
    if (chunkedAt !== -1 && te.indexOf("chunked", chunkedAt + 1) !== -1) {
      throw new HttpParseError("chunked_not_final", 400, "chunked applied twice");
    }
    if (isRequest) {
      // Only chunked is understood; a request body we cannot frame cannot be relayed safely.
      if (te.length !== 1 || chunkedAt !== 0) {
        throw new HttpParseError(
          te.length === 0 || chunkedAt === -1
            ? "unsupported_transfer_encoding"
            : "chunked_not_final",
          501,
          `unsupported Transfer-Encoding "${te.join(", ")}"`,
        );
      }
      head.chunked = true;
    } else if (chunkedAt !== -1) {
      head.chunked = true;
    } else {
      head.otherTransferCoding = true;
    }
  }
  if (head.contentLength > limits.maxBodyBytes) {
    throw new HttpParseError(
      "body_too_large",
      413,
      `Content-Length ${head.contentLength} exceeds ${limits.maxBodyBytes}`,
    );
  }
  let close = false;
  let keepAliveToken = false;
  let upgradeToken = false;
  if (connection !== null) {
    for (const t of connection) {
      if (t === "close") close = true;
      else if (t === "keep-alive") keepAliveToken = true;
      else if (t === "upgrade") upgradeToken = true;
    }
  }
  if (isRequest && (seen & FORWARDING_KINDS) !== 0) head.forwardingFields = true;
  head.keepAlive = head.versionMinor === 1 ? !close : keepAliveToken && !close;
  head.upgrade = upgradeToken && upgradeField;
  // Without hop-by-hop kinds or a Connection list nothing is hop-by-hop; `hop` stays lazy.
  if ((seen & HOP_KINDS) !== 0 || connection !== null) _markHop(head, connection);
  if (isRequest) {
    if (hostCount > 1) throw new HttpParseError("duplicate_host", 400, "more than one Host field");
    if (hostCount === 0 && head.versionMinor === 1) {
      throw new HttpParseError("missing_host", 400, "HTTP/1.1 request without Host");
    }
  }
  return host;
}

/**
 * Fields that frame or address the message for every recipient: a Connection option naming one
 * is ignored (RFC 9110 section 7.6.1 forbids sending it). Dropping, say, Content-Length while
 * still delimiting the body by it would let the next hop read the body as another request.
 */
const NEVER_HOP_KINDS = (1 << K_CONTENT_LENGTH) | (1 << K_TRANSFER_ENCODING) | (1 << K_HOST);

/** Fills `head.hop`: static hop-by-hop fields and those Connection names. */
function _markHop(head: ParsedHead, connection: string[] | null): void {
  const buf = head.raw;
  const f = head._f;
  const hop: boolean[] = [];
  let any = false;
  for (let o = 0; o < f.length; o += FIELD_STRIDE) {
    const kind = f[o + F_KIND]!;
    let h = ((1 << kind) & HOP_KINDS) !== 0;
    if (!h && connection !== null && ((1 << kind) & NEVER_HOP_KINDS) === 0) {
      const p = f[o + F_LINE]!;
      const q = f[o + F_COLON]!;
      for (let j = 0; j < connection.length && !h; j++) h = _nameIs(buf, p, q, connection[j]!);
    }
    // An upgrade keeps its Upgrade field; the proxy rewrites Connection itself.
    if (h && kind === K_UPGRADE && head.upgrade) h = false;
    hop.push(h);
    if (h) any = true;
  }
  head._hop = hop;
  head.hasHopByHop = any;
}

/**
 * Sets the request flags read from fields the parser only classifies: a capability is asked
 * for, a field the record layer reads is present, and whether the first Expect field is
 * `100-continue`.
 */
export function applyRequestFlags(head: ParsedHead, seen: number): void {
  const buf = head.raw;
  if ((seen & (1 << K_CAPABILITY)) !== 0) head.asksCapability = true;
  if ((seen & (1 << K_RECORDED)) !== 0) head.recordedFields = true;
  if ((seen & (1 << K_EXPECT)) !== 0) {
    const f = head._f;
    for (let o = 0; o < f.length; o += FIELD_STRIDE) {
      if (f[o + F_KIND] !== K_EXPECT) continue;
      // Only the first Expect field counts.
      const vs = f[o + F_VS]!;
      head.expectContinue = f[o + F_VE]! - vs === 12 && _eqLower(buf, vs, "100-continue");
      break;
    }
  }
}

/** Returns the first value of a field (name lower-cased), or null. */
export function headerValue(head: HttpHead, name: string): string | null {
  if (head instanceof ParsedHead && head._names === null) {
    // Compare names as bytes so a lookup decodes one value, not the whole head.
    const f = head._f;
    const buf = head.raw;
    for (let o = 0; o < f.length; o += FIELD_STRIDE) {
      if (_nameIs(buf, f[o + F_LINE]!, f[o + F_COLON]!, name)) {
        return head._values !== null
          ? head._values[o / FIELD_STRIDE]!
          : latin1(buf, f[o + F_VS]!, f[o + F_VE]!);
      }
    }
    return null;
  }
  const i = head.names.indexOf(name);
  return i === -1 ? null : head.values[i]!;
}

/**
 * Gives a head parsed from bytes the strings of its field names and values that the caller
 * already holds (an HTTP/2 block written out as a head), so they are not decoded again.
 * Ignored unless `head` is a parsed head with exactly that many fields; `names` must be lower
 * case and `values` trimmed, as the parser makes them.
 */
export function presetFieldStrings(head: HttpHead, names: string[], values: string[]): void {
  if (!(head instanceof ParsedHead) || head._names !== null) return;
  if (names.length * FIELD_STRIDE !== head._f.length) return;
  head._names = names;
  head._values = values;
}

/**
 * Marks every field named `name` (lower-cased) hop-by-hop so the rewriter drops it, without
 * decoding the other names. Returns how many fields were marked.
 */
export function markHopByHop(head: HttpHead, name: string): number {
  let marked = 0;
  if (head instanceof ParsedHead && head._names === null) {
    const f = head._f;
    for (let o = 0; o < f.length; o += FIELD_STRIDE) {
      if (!_nameIs(head.raw, f[o + F_LINE]!, f[o + F_COLON]!, name)) continue;
      head.hop[o / FIELD_STRIDE] = true;
      marked++;
    }
  } else {
    const names = head.names;
    for (let i = names.indexOf(name); i !== -1; i = names.indexOf(name, i + 1)) {
      head.hop[i] = true;
      marked++;
    }
  }
  if (marked > 0) head.hasHopByHop = true;
  return marked;
}
