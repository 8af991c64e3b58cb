/**
 * Strict HTTP/1.x head parsing (RFC 9112) over bytes, without copying the head.
 *
 * A head is located with {@linkcode findHeadEnd}, which can be resumed as more bytes arrive,
 * then parsed in one pass. Parsed heads keep byte offsets into the caller's buffer so a proxy
 * can forward header lines verbatim instead of re-encoding them.
 * @module
 */
import { HttpParseError } from "./errors.ts";

/** Largest request or response head accepted, start line included. */
export const MAX_HEAD_BYTES = 64 * 1024;
/** Most header fields accepted in one head. */
export const MAX_HEADER_COUNT = 100;
/** Empty lines tolerated before a request line (RFC 9112 section 2.2 robustness). */
export const MAX_LEADING_EMPTY_LINES = 4;
/** Most decimal digits accepted in a Content-Length (keeps it a safe integer). */
const MAX_CONTENT_LENGTH_DIGITS = 15;

/** Bounds applied while parsing a head. */
export interface HeadLimits {
  /** Largest head in bytes; larger ones fail with 431. @default MAX_HEAD_BYTES */
  maxHeadBytes: number;
  /** Most header fields; more fail with 431. @default MAX_HEADER_COUNT */
  maxHeaderCount: number;
  /** Largest declared Content-Length; larger ones fail with 413. @default Number.MAX_SAFE_INTEGER */
  maxBodyBytes: number;
}

/** The limits used when none are given. */
export const DEFAULT_HEAD_LIMITS: Readonly<HeadLimits> = Object.freeze({
  maxHeadBytes: MAX_HEAD_BYTES,
  maxHeaderCount: MAX_HEADER_COUNT,
  maxBodyBytes: Number.MAX_SAFE_INTEGER,
});

/**
 * Fields shared by request and response heads. Offsets index into `raw`.
 *
 * Parsed heads decode `names`, `values`, `reason` and {@linkcode headerValue} results from
 * `raw` when first read, so read them before the buffer is reused, like `raw` itself.
 */
export interface HttpHead {
  /** The buffer the head was parsed from; only valid until the caller reuses it. */
  raw: Uint8Array;
  /** Offset of the start line in `raw`. */
  start: number;
  /** Offset just past the blank line that ends the head. */
  end: number;
  /** Offset just past the start line's CRLF. */
  firstLineEnd: number;
  /** Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1. */
  versionMinor: number;
  /** Lower-cased field names, in order. */
  names: string[];
  /** Field values with surrounding whitespace removed, parallel to `names`. */
  values: string[];
  /** Offset of each field line in `raw`. */
  lineStarts: number[];
  /** Offset just past each field line's CRLF. */
  lineEnds: number[];
  /** Whether each field is hop-by-hop and must not be forwarded as is. */
  hop: boolean[];
  /** Whether any field is hop-by-hop (lets a proxy forward the head verbatim when false). */
  hasHopByHop: boolean;
  /** Declared Content-Length, or -1 when absent. */
  contentLength: number;
  /** Whether the body uses chunked transfer coding (as its final coding). */
  chunked: boolean;
  /** Whether Transfer-Encoding is present but its final coding is not chunked (responses only). */
  otherTransferCoding: boolean;
  /** Whether the sender allows the connection to stay open after this message. */
  keepAlive: boolean;
  /** Whether `Connection` lists `upgrade` and an `Upgrade` field is present. */
  upgrade: boolean;
  /** Any byte at or above 0x80 appears in a field value. */
  hasObsText: boolean;
  /**
   * Content-Length was sent as a list (`5, 5`) or more than once: the forwarded head must carry
   * it once, as {@linkcode dropRewrittenFields} and the writers in `rewrite.ts` do.
   */
  contentLengthListed?: boolean;
  /** A field a proxy must drop or merge is present (see {@linkcode dropRewrittenFields}). */
  forwardingFields?: boolean;
}

/** A parsed request head. */
export interface RequestHead extends HttpHead {
  /** The method token, case preserved. */
  method: string;
  /** The request-target as sent. */
  target: string;
  /**
   * Set when a proxy replaced `target` (e.g. with the normalized path it authorized), so the
   * forwarded start line is rebuilt from `target` instead of copied from `raw`.
   */
  targetRewritten?: boolean;
  /** The Host field value, or null (only possible for HTTP/1.0). */
  host: string | null;
  /** Whether the client sent `Expect: 100-continue`. */
  expectContinue: boolean;
  /**
   * Whether an `x-skein-capability` field is present (set by the parser, so a router looks
   * the value up only then; heads built otherwise leave it unset).
   */
  asksCapability?: boolean;
}

/** A parsed response head. */
export interface ResponseHead extends HttpHead {
  /** Status code, 100..999. */
  status: number;
  /** Reason phrase (may be empty). */
  reason: string;
}

/** Resumable scanner state for {@linkcode findHeadEnd}. */
export interface HeadScan {
  /** Where the head starts (moves past leading empty lines). */
  start: number;
  /** Where the current line starts. */
  lineStart: number;
  /** Where scanning resumes. */
  pos: number;
  /** Leading empty lines skipped so far. */
  skipped: number;
}

/** Bytes searched for a line feed with a plain loop before falling back to indexOf. */
const LF_LOOP_SCAN_BYTES = 64;

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;
const COLON = 58;

/** tchar per RFC 9110 section 5.6.2. */
const TCHAR = new Uint8Array(256);
/** Bytes allowed in a field value: VCHAR, SP, HTAB, obs-text. */
const VCHAR = new Uint8Array(256);
/** FIELD_BYTE entry of a byte allowed in a value below 0x80. */
const FB_PLAIN = 1;
/** FIELD_BYTE entry of obs-text (0x80-0xff), allowed but recorded in `hasObsText`. */
const FB_OBS = 2;
/** VCHAR with obs-text told apart, so the value scan needs one lookup per byte. */
const FIELD_BYTE = new Uint8Array(256);
{
  for (let c = 0x21; c <= 0x7e; c++) VCHAR[c] = 1;
  for (let c = 0x80; c <= 0xff; c++) VCHAR[c] = 1;
  VCHAR[SP] = 1;
  VCHAR[HTAB] = 1;
  const t = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  for (let i = 0; i < t.length; i++) TCHAR[t.charCodeAt(i)] = 1;
  for (let c = 0; c < 256; c++) if (VCHAR[c] === 1) FIELD_BYTE[c] = c >= 0x80 ? FB_OBS : FB_PLAIN;
}

/** Starts a scan for a head beginning at `start`. */
export function newHeadScan(start = 0): HeadScan {
  return { start, lineStart: start, pos: start, skipped: 0 };
}

/** Resets a scan so it can be reused for the next message without allocating. */
export function resetHeadScan(scan: HeadScan, start: number): void {
  scan.start = start;
  scan.lineStart = start;
  scan.pos = start;
  scan.skipped = 0;
}

/**
 * Looks for the blank line ending a head in `buf[scan.pos, end)`.
 * Returns the offset just past it, or -1 when more bytes are needed (the scan remembers where
 * it stopped). Throws {@linkcode HttpParseError} for bare LF or a head over `maxHeadBytes`.
 */
export function findHeadEnd(
  buf: Uint8Array,
  end: number,
  scan: HeadScan,
  maxHeadBytes: number = MAX_HEAD_BYTES,
): number {
  let i = scan.pos;
  while (true) {
    // Most lines are short: a plain loop beats indexOf's per-call cost, which pays off only
    // on long lines (cookies, tokens).
    let lf = i;
    const loopEnd = Math.min(end, i + LF_LOOP_SCAN_BYTES);
    while (lf < loopEnd && buf[lf] !== LF) lf++;
    if (lf === loopEnd && lf < end) lf = buf.indexOf(LF, lf);
    if (lf === -1 || lf >= end) {
      scan.pos = end;
      if (end - scan.start > maxHeadBytes) {
        throw new HttpParseError("head_too_large", 431, `head exceeds ${maxHeadBytes} bytes`);
      }
      return -1;
    }
    if (lf === scan.lineStart || buf[lf - 1] !== CR) {
      throw new HttpParseError("bare_lf", 400, `line feed without carriage return at ${lf}`);
    }
    if (lf + 1 - scan.start > maxHeadBytes) {
      throw new HttpParseError("head_too_large", 431, `head exceeds ${maxHeadBytes} bytes`);
    }
    if (lf - 1 === scan.lineStart) {
      if (scan.lineStart === scan.start) {
        if (++scan.skipped > MAX_LEADING_EMPTY_LINES) {
          throw new HttpParseError("bad_request_line", 400, "too many empty lines before head");
        }
        scan.start = scan.lineStart = i = lf + 1;
        continue;
      }
      scan.pos = lf + 1;
      return lf + 1;
    }
    scan.lineStart = i = lf + 1;
  }
}

/** Longest string {@linkcode latin1} builds from a reused scratch array instead of a view. */
const LATIN1_SCRATCH_MAX = 64;
/** One scratch array per length, so `String.fromCharCode.apply` gets exactly `n` arguments. */
const LATIN1_SCRATCH: number[][] = [];
for (let n = 0; n <= LATIN1_SCRATCH_MAX; n++) LATIN1_SCRATCH.push(new Array<number>(n).fill(0));

/** Decodes bytes as ISO-8859-1, one char per byte, so values round-trip exactly. */
export function latin1(buf: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n <= 0) return "";
  // Short strings dominate heads; building them without a subarray view avoids an allocation.
  switch (n) {
    case 1:
      return String.fromCharCode(buf[start]!);
    case 2:
      return String.fromCharCode(buf[start]!, buf[start + 1]!);
    case 3:
      return String.fromCharCode(buf[start]!, buf[start + 1]!, buf[start + 2]!);
    case 4:
      return String.fromCharCode(buf[start]!, buf[start + 1]!, buf[start + 2]!, buf[start + 3]!);
  }
  if (n <= LATIN1_SCRATCH_MAX) {
    const t = LATIN1_SCRATCH[n]!;
    for (let i = 0; i < n; i++) t[i] = buf[start + i]!;
    return String.fromCharCode.apply(null, t);
  }
  return String.fromCharCode.apply(null, buf.subarray(start, end) as unknown as number[]);
}

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
/** Kinds that {@linkcode dropRewrittenFields} acts on. */
const FORWARDING_KINDS = (1 << K_IDENTITY) | (1 << K_XFF);
/** Kinds that are hop-by-hop whatever Connection says (STATIC_HOP plus the proxy- prefix). */
const HOP_KINDS = (1 << K_CONNECTION) | (1 << K_UPGRADE) | (1 << K_HOP);

/** Classifies a field name `buf[p, q)` without decoding it. */
function _kind(buf: Uint8Array, p: number, q: number): number {
  switch (q - p) {
    case 2:
      if (_eqLower(buf, p, "te")) return K_HOP;
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
class _Head implements RequestHead, ResponseHead {
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

/** Parses "HTTP/1.x" at `p`; returns the minor version. */
function _version(buf: Uint8Array, p: number, end: number, status: number): number {
  if (
    end - p !== 8 || buf[p] !== 72 || buf[p + 1] !== 84 || buf[p + 2] !== 84 ||
    buf[p + 3] !== 80 || buf[p + 4] !== 47 || buf[p + 6] !== 46
  ) {
    throw new HttpParseError("bad_version", status, "malformed HTTP version");
  }
  const major = buf[p + 5]! - 48;
  const minor = buf[p + 7]! - 48;
  if (major < 0 || major > 9 || minor < 0 || minor > 9) {
    throw new HttpParseError("bad_version", status, "malformed HTTP version");
  }
  if (major !== 1 || minor > 1) {
    throw new HttpParseError("bad_version", 505, `unsupported HTTP/${major}.${minor}`);
  }
  return minor;
}

/**
 * Validates all field lines from `p` up to the blank line and fills the head's field table.
 * Returns a bit set of the field kinds seen. Every line is checked before any field's meaning
 * is applied, so a syntax error anywhere wins over a semantic one, as it always has.
 */
function _fields(
  buf: Uint8Array,
  p: number,
  headEnd: number,
  head: _Head,
  limits: HeadLimits,
): number {
  const last = headEnd - 2; // the blank line's CR
  const f = head._f;
  const maxCount = limits.maxHeaderCount;
  let count = 0;
  let seen = 0;
  let obs = false;
  while (p < last) {
    if (count >= maxCount) {
      throw new HttpParseError("too_many_headers", 431, `more than ${maxCount} header fields`);
    }
    const c0 = buf[p]!;
    if (c0 === SP || c0 === HTAB) {
      throw new HttpParseError("obs_fold", 400, "obsolete line folding is not allowed");
    }
    // CR is not a tchar, so the name scan cannot run past the line.
    let q = p;
    while (TCHAR[buf[q]!] === 1) q++;
    if (q === p || buf[q] !== COLON) {
      throw new HttpParseError("bad_header_name", 400, `invalid field name at offset ${p}`);
    }
    // One pass finds the line end and validates the value: the first byte outside
    // VCHAR/SP/HTAB/obs-text must be the CR of this line's CRLF.
    let k = q + 1;
    let t: number;
    while ((t = FIELD_BYTE[buf[k]!]!) > 0) {
      if (t === FB_OBS) obs = true;
      k++;
    }
    const c = buf[k]!;
    if (c === CR) {
      if (buf[k + 1] !== LF) {
        throw new HttpParseError("bare_cr", 400, "carriage return inside a field");
      }
    } else {
      throw new HttpParseError("bad_header_value", 400, `control byte 0x${c.toString(16)}`);
    }
    const eol = k;
    let vs = q + 1;
    while (vs < eol && (buf[vs] === SP || buf[vs] === HTAB)) vs++;
    let ve = eol;
    while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === HTAB)) ve--;
    const kind = _kind(buf, p, q);
    seen |= 1 << kind;
    f.push(p, q, vs, ve, kind);
    count++;
    p = eol + 2;
  }
  if (obs) head.hasObsText = true;
  return seen;
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
function _contentLengthList(head: _Head, v: string): void {
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
function _contentLength(head: _Head, len: number): void {
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
function _semantics(
  head: _Head,
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
function _markHop(head: _Head, connection: string[] | null): void {
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

/** Decodes a method, sharing the strings of the common ones. */
function _method(buf: Uint8Array, s: number, e: number): string {
  switch (e - s) {
    case 3:
      if (buf[s] === 71 && buf[s + 1] === 69 && buf[s + 2] === 84) return "GET";
      if (buf[s] === 80 && buf[s + 1] === 85 && buf[s + 2] === 84) return "PUT";
      break;
    case 4:
      if (buf[s] === 80 && buf[s + 1] === 79 && buf[s + 2] === 83 && buf[s + 3] === 84) {
        return "POST";
      }
      if (buf[s] === 72 && buf[s + 1] === 69 && buf[s + 2] === 65 && buf[s + 3] === 68) {
        return "HEAD";
      }
      break;
  }
  return latin1(buf, s, e);
}

/**
 * Parses a request head occupying `buf[start, end)` as located by {@linkcode findHeadEnd}.
 * Throws {@linkcode HttpParseError} carrying the status to answer.
 */
export function parseRequestHead(
  buf: Uint8Array,
  start: number,
  end: number,
  limits: HeadLimits = DEFAULT_HEAD_LIMITS,
): RequestHead {
  const lf = buf.indexOf(LF, start);
  const eol = lf - 1;
  let p = start;
  while (p < eol && TCHAR[buf[p]!] === 1) p++;
  if (p === start || buf[p] !== SP) {
    throw new HttpParseError("bad_request_line", 400, "invalid method");
  }
  const ms = start;
  const me = p;
  const ts = ++p;
  while (p < eol && buf[p]! > SP && buf[p]! < 0x7f) p++;
  if (p === ts || buf[p] !== SP) {
    throw new HttpParseError("bad_request_line", 400, "invalid request-target");
  }
  const head = new _Head(buf, start, end);
  head.versionMinor = _version(buf, p + 1, eol, 400);
  head.method = _method(buf, ms, me);
  head.target = latin1(buf, ts, p);
  head.firstLineEnd = lf + 1;
  const seen = _fields(buf, lf + 1, end, head, limits);
  head.host = _semantics(head, limits, true, seen);
  if ((seen & (1 << K_CAPABILITY)) !== 0) head.asksCapability = true;
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
  return head;
}

/**
 * Parses a response head occupying `buf[start, end)`. Malformed responses throw
 * {@linkcode HttpParseError} with status 502, the status a proxy answers for them.
 */
export function parseResponseHead(
  buf: Uint8Array,
  start: number,
  end: number,
  limits: HeadLimits = DEFAULT_HEAD_LIMITS,
): ResponseHead {
  const lf = buf.indexOf(LF, start);
  const eol = lf - 1;
  if (eol - start < 12 || buf[start + 8] !== SP) {
    throw new HttpParseError("bad_status_line", 502, "malformed status line");
  }
  const head = new _Head(buf, start, end);
  try {
    head.versionMinor = _version(buf, start, start + 8, 502);
  } catch {
    throw new HttpParseError("bad_status_line", 502, "malformed status line version");
  }
  const d0 = buf[start + 9]! - 48;
  const d1 = buf[start + 10]! - 48;
  const d2 = buf[start + 11]! - 48;
  if (d0 < 1 || d0 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) {
    throw new HttpParseError("bad_status_line", 502, "malformed status code");
  }
  if (eol > start + 12) {
    if (buf[start + 12] !== SP) {
      throw new HttpParseError("bad_status_line", 502, "malformed status line");
    }
    for (let k = start + 13; k < eol; k++) {
      if (VCHAR[buf[k]!] !== 1) {
        throw new HttpParseError("bad_status_line", 502, "control byte in reason phrase");
      }
    }
    head._rs = start + 13;
    head._re = eol;
  }
  head.status = d0 * 100 + d1 * 10 + d2;
  head.firstLineEnd = lf + 1;
  try {
    const seen = _fields(buf, lf + 1, end, head, limits);
    _semantics(head, limits, false, seen);
  } catch (e) {
    if (e instanceof HttpParseError) throw new HttpParseError(e.code, 502, e.message);
    throw e;
  }
  return head;
}

/** Returns the first value of a field (name lower-cased), or null. */
export function headerValue(head: HttpHead, name: string): string | null {
  if (head instanceof _Head && head._names === null) {
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
 * Marks every field named `name` (lower-cased) hop-by-hop so the rewriter drops it, without
 * decoding the other names. Returns how many fields were marked.
 */
export function markHopByHop(head: HttpHead, name: string): number {
  let marked = 0;
  if (head instanceof _Head && head._names === null) {
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

/** The names {@linkcode dropRewrittenFields} treats as identity fields (lower case). */
export const IDENTITY_FIELDS: readonly string[] = [
  "x-forwarded-client-cert",
  "x-skein-caller",
  "x-skein-forwarded-peer",
  "forwarded",
  "x-http-method-override",
  "x-http-method",
  "x-method-override",
];

/** What {@linkcode dropRewrittenFields} should drop. */
export interface DropFields {
  /** Drop the identity and method-override fields (the callee's inbound). */
  identity: boolean;
  /** Drop `x-forwarded-for` lines and return their values joined, to send as one list. */
  forwardedFor: boolean;
}

/**
 * Marks as hop-by-hop (so the head writers skip them) the fields a proxy must not pass on as
 * sent: a listed or repeated Content-Length (the writer sends one value), and per `what` the
 * identity fields and the `x-forwarded-for` lines. Returns the dropped `x-forwarded-for`
 * values joined with ", " (null when none), for the writer to append to. Only called for heads
 * whose `contentLengthListed` or `forwardingFields` is set, which the usual request is not.
 */
export function dropRewrittenFields(head: HttpHead, what: DropFields): string | null {
  let xff: string | null = null;
  let marked = false;
  const n = head.names.length;
  const names = head.names;
  const hop = head.hop;
  for (let i = 0; i < n; i++) {
    const name = names[i]!;
    let drop = false;
    if (name === "content-length") drop = head.contentLengthListed === true;
    else if (name === "x-forwarded-for") {
      if (what.forwardedFor) {
        drop = true;
        const v = head.values[i]!;
        if (v !== "") xff = xff === null ? v : `${xff}, ${v}`;
      }
    } else if (what.identity && IDENTITY_FIELDS.includes(name)) drop = true;
    if (drop) {
      hop[i] = true;
      marked = true;
    }
  }
  if (marked) head.hasHopByHop = true;
  return xff;
}

/**
 * Accumulates bytes until a complete head is available, then parses it.
 * Convenience wrapper over {@linkcode findHeadEnd} for callers that do not manage buffers.
 */
export class HeadParser<H extends HttpHead> {
  #buf = new Uint8Array(1024);
  #len = 0;
  #scan = newHeadScan(0);
  readonly #parse: (buf: Uint8Array, start: number, end: number, limits: HeadLimits) => H;
  readonly #limits: HeadLimits;

  /** Creates a parser; use {@linkcode requestHeadParser} or {@linkcode responseHeadParser}. */
  constructor(
    parse: (buf: Uint8Array, start: number, end: number, limits: HeadLimits) => H,
    limits: HeadLimits = DEFAULT_HEAD_LIMITS,
  ) {
    this.#parse = parse;
    this.#limits = limits;
  }

  /**
   * Adds bytes; returns the head once complete (with `rest`, the bytes after it), else null.
   * Throws {@linkcode HttpParseError} as soon as the bytes seen are known to be invalid.
   */
  push(chunk: Uint8Array): { head: H; rest: Uint8Array } | null {
    if (this.#len + chunk.length > this.#buf.length) {
      const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + chunk.length));
      next.set(this.#buf.subarray(0, this.#len));
      this.#buf = next;
    }
    this.#buf.set(chunk, this.#len);
    this.#len += chunk.length;
    const end = findHeadEnd(this.#buf, this.#len, this.#scan, this.#limits.maxHeadBytes);
    if (end === -1) return null;
    const head = this.#parse(this.#buf, this.#scan.start, end, this.#limits);
    return { head, rest: this.#buf.slice(end, this.#len) };
  }
}

/** Creates a {@linkcode HeadParser} for requests. */
export function requestHeadParser(limits?: HeadLimits): HeadParser<RequestHead> {
  return new HeadParser(parseRequestHead, limits);
}

/** Creates a {@linkcode HeadParser} for responses. */
export function responseHeadParser(limits?: HeadLimits): HeadParser<ResponseHead> {
  return new HeadParser(parseResponseHead, limits);
}
