/**
 * What the framing and connection fields of a parsed head mean (RFC 9112 sections 6 and 7,
 * RFC 9110 section 7.6.1): Content-Length and Transfer-Encoding rules (the smuggling checks),
 * keep-alive, upgrade, Host, and which fields are hop-by-hop.
 * @module
 */
import { HttpParseError } from "./errors.ts";
import type { HeadLimits } from "./head_types.ts";
import { eqLower, latin1 } from "./head_bytes.ts";
import {
  F_COLON,
  F_KIND,
  F_LINE,
  F_VE,
  F_VS,
  FIELD_STRIDE,
  FORWARDING_KINDS,
  HOP_KINDS,
  K_CONNECTION,
  K_CONTENT_LENGTH,
  K_HOST,
  K_OTHER,
  K_TRANSFER_ENCODING,
  K_UPGRADE,
  nameIs,
  type ParsedHead,
} from "./head_fields.ts";

/** Most decimal digits accepted in a Content-Length (keeps it a safe integer). */
const MAX_CONTENT_LENGTH_DIGITS = 15;

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
          if (ve - vs === 7 && eqLower(buf, vs, "chunked")) te.push("chunked");
          else _tokens(latin1(buf, vs, ve), te);
          break;
        case K_CONNECTION:
          connection ??= [];
          if (ve - vs === 5 && eqLower(buf, vs, "close")) connection.push("close");
          else if (ve - vs === 10 && eqLower(buf, vs, "keep-alive")) {
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
      for (let j = 0; j < connection.length && !h; j++) h = nameIs(buf, p, q, connection[j]!);
    }
    // An upgrade keeps its Upgrade field; the proxy rewrites Connection itself.
    if (h && kind === K_UPGRADE && head.upgrade) h = false;
    hop.push(h);
    if (h) any = true;
  }
  head._hop = hop;
  head.hasHopByHop = any;
}
