/**
 * A straightforward head parser, the oracle (plus the two flags the head writers act on:
 * `contentLengthListed`, `forwardingFields`) for the differential tests in
 * `mesh/http1/head_differential_test.ts`: the optimized parser in `mesh/http1/head.ts` must
 * give the same heads and the same errors for every input. Test support only.
 * @module
 */
import { HttpParseError } from "../../mesh/http1/errors.ts";

import {
  DEFAULT_HEAD_LIMITS,
  type HeadLimits,
  type HeadScan,
  type HttpHead,
  IDENTITY_FIELDS,
  MAX_HEAD_BYTES,
  MAX_LEADING_EMPTY_LINES,
  type RequestHead,
  type ResponseHead,
} from "../../mesh/http1/head.ts";

/** Most decimal digits accepted in a Content-Length (keeps it a safe integer). */
const MAX_CONTENT_LENGTH_DIGITS = 15;

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;
const COLON = 58;

/** tchar per RFC 9110 section 5.6.2. */
const TCHAR = new Uint8Array(256);
/** Bytes allowed in a field value: VCHAR, SP, HTAB, obs-text. */
const VCHAR = new Uint8Array(256);
{
  for (let c = 0x21; c <= 0x7e; c++) VCHAR[c] = 1;
  for (let c = 0x80; c <= 0xff; c++) VCHAR[c] = 1;
  VCHAR[SP] = 1;
  VCHAR[HTAB] = 1;
  const t = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  for (let i = 0; i < t.length; i++) TCHAR[t.charCodeAt(i)] = 1;
}

/** Fields that frame or address the message: a Connection option naming one is ignored. */
const NEVER_HOP = new Set(["content-length", "transfer-encoding", "host"]);

/** Fields that only concern one connection (RFC 9110 section 7.6.1), besides Connection's list. */
const STATIC_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "upgrade",
]);

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
    const lf = buf.indexOf(LF, i);
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

/** Decodes bytes as ISO-8859-1, one char per byte, so values round-trip exactly. */
export function latin1(buf: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n <= 0) return "";
  if (n <= 64) {
    let s = "";
    for (let i = start; i < end; i++) s += String.fromCharCode(buf[i]!);
    return s;
  }
  return String.fromCharCode.apply(null, buf.subarray(start, end) as unknown as number[]);
}

function _emptyHead(raw: Uint8Array, start: number, end: number): HttpHead {
  return {
    raw,
    start,
    end,
    firstLineEnd: start,
    versionMinor: 1,
    names: [],
    values: [],
    lineStarts: [],
    lineEnds: [],
    hop: [],
    hasHopByHop: false,
    contentLength: -1,
    chunked: false,
    otherTransferCoding: false,
    keepAlive: true,
    upgrade: false,
    hasObsText: false,
    contentLengthListed: false,
    forwardingFields: false,
  };
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

/** Parses all field lines from `p` up to the blank line; fills `head`. Returns field count. */
function _fields(
  buf: Uint8Array,
  p: number,
  headEnd: number,
  head: HttpHead,
  limits: HeadLimits,
  isRequest: boolean,
): void {
  const last = headEnd - 2; // the blank line's CR
  while (p < last) {
    if (head.names.length >= limits.maxHeaderCount) {
      throw new HttpParseError(
        "too_many_headers",
        431,
        `more than ${limits.maxHeaderCount} header fields`,
      );
    }
    const lf = buf.indexOf(LF, p);
    const eol = lf - 1; // CR, guaranteed by findHeadEnd
    const c0 = buf[p]!;
    if (c0 === SP || c0 === HTAB) {
      throw new HttpParseError("obs_fold", 400, "obsolete line folding is not allowed");
    }
    let q = p;
    while (q < eol && TCHAR[buf[q]!] === 1) q++;
    if (q === p || buf[q] !== COLON) {
      throw new HttpParseError("bad_header_name", 400, `invalid field name at offset ${p}`);
    }
    let vs = q + 1;
    for (let k = vs; k < eol; k++) {
      const c = buf[k]!;
      if (VCHAR[c] !== 1) {
        if (c === CR) throw new HttpParseError("bare_cr", 400, "carriage return inside a field");
        throw new HttpParseError("bad_header_value", 400, `control byte 0x${c.toString(16)}`);
      }
      if (c >= 0x80) head.hasObsText = true;
    }
    while (vs < eol && (buf[vs] === SP || buf[vs] === HTAB)) vs++;
    let ve = eol;
    while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === HTAB)) ve--;
    head.names.push(latin1(buf, p, q).toLowerCase());
    head.values.push(latin1(buf, vs, ve));
    head.lineStarts.push(p);
    head.lineEnds.push(lf + 1);
    p = lf + 1;
  }
  void isRequest;
}

/** Splits a comma-separated list into trimmed, lower-cased, non-empty members. */
function _tokens(v: string, out: string[]): void {
  for (const part of v.split(",")) {
    const t = part.trim().toLowerCase();
    if (t !== "") out.push(t);
  }
}

/** Applies the semantics of framing and connection fields; marks hop-by-hop ones. */
function _semantics(head: HttpHead, limits: HeadLimits, isRequest: boolean): string | null {
  const names = head.names;
  const values = head.values;
  let connection: string[] | null = null;
  let te: string[] | null = null;
  let host: string | null = null;
  let hostCount = 0;
  let upgradeField = false;
  for (let i = 0; i < names.length; i++) {
    const n = names[i]!;
    const v = values[i]!;
    switch (n) {
      case "content-length": {
        // "5, 5" and repeated identical fields are allowed; any disagreement is not.
        // Anything but one plain number (a list, a repeat, odd spaces) is sent on normalized.
        if (!/^[0-9]{1,15}$/.test(v) || head.contentLength !== -1) head.contentLengthListed = true;
        for (const part of v.split(",")) {
          const t = part.trim();
          if (t.length === 0 || t.length > MAX_CONTENT_LENGTH_DIGITS || !/^[0-9]+$/.test(t)) {
            throw new HttpParseError("bad_content_length", 400, `invalid Content-Length "${v}"`);
          }
          const len = Number(t);
          if (head.contentLength !== -1 && head.contentLength !== len) {
            throw new HttpParseError(
              "conflicting_content_length",
              400,
              `Content-Length ${head.contentLength} vs ${len}`,
            );
          }
          head.contentLength = len;
        }
        break;
      }
      case "transfer-encoding":
        te ??= [];
        _tokens(v, te);
        break;
      case "connection":
        connection ??= [];
        _tokens(v, connection);
        break;
      case "upgrade":
        upgradeField = true;
        break;
      case "host":
        host = v;
        hostCount++;
        break;
      default:
        if (isRequest && (n === "x-forwarded-for" || IDENTITY_FIELDS.includes(n))) {
          head.forwardingFields = true;
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
  head.keepAlive = head.versionMinor === 1 ? !close : keepAliveToken && !close;
  head.upgrade = upgradeToken && upgradeField;
  for (let i = 0; i < names.length; i++) {
    const n = names[i]!;
    let h = STATIC_HOP.has(n) || n.startsWith("proxy-") ||
      (connection !== null && connection.includes(n) && !NEVER_HOP.has(n));
    // An upgrade keeps its Upgrade field; the proxy rewrites Connection itself.
    if (h && n === "upgrade" && head.upgrade) h = false;
    head.hop.push(h);
    if (h) head.hasHopByHop = true;
  }
  if (isRequest) {
    if (hostCount > 1) throw new HttpParseError("duplicate_host", 400, "more than one Host field");
    if (hostCount === 0 && head.versionMinor === 1) {
      throw new HttpParseError("missing_host", 400, "HTTP/1.1 request without Host");
    }
  }
  return host;
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
  const method = latin1(buf, start, p);
  const ts = ++p;
  while (p < eol && buf[p]! > SP && buf[p]! < 0x7f) p++;
  if (p === ts || buf[p] !== SP) {
    throw new HttpParseError("bad_request_line", 400, "invalid request-target");
  }
  const target = latin1(buf, ts, p);
  const head = _emptyHead(buf, start, end) as RequestHead;
  head.versionMinor = _version(buf, p + 1, eol, 400);
  head.firstLineEnd = lf + 1;
  head.method = method;
  head.target = target;
  _fields(buf, lf + 1, end, head, limits, true);
  head.host = _semantics(head, limits, true);
  head.expectContinue = false;
  const ex = head.names.indexOf("expect");
  if (ex !== -1 && head.values[ex]!.toLowerCase() === "100-continue") head.expectContinue = true;
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
  const head = _emptyHead(buf, start, end) as ResponseHead;
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
  let reason = "";
  if (eol > start + 12) {
    if (buf[start + 12] !== SP) {
      throw new HttpParseError("bad_status_line", 502, "malformed status line");
    }
    for (let k = start + 13; k < eol; k++) {
      if (VCHAR[buf[k]!] !== 1) {
        throw new HttpParseError("bad_status_line", 502, "control byte in reason phrase");
      }
    }
    reason = latin1(buf, start + 13, eol);
  }
  head.status = d0 * 100 + d1 * 10 + d2;
  head.reason = reason;
  head.firstLineEnd = lf + 1;
  try {
    _fields(buf, lf + 1, end, head, limits, false);
    _semantics(head, limits, false);
  } catch (e) {
    if (e instanceof HttpParseError) throw new HttpParseError(e.code, 502, e.message);
    throw e;
  }
  return head;
}

/** Returns the first value of a field (name lower-cased), or null. */
export function headerValue(head: HttpHead, name: string): string | null {
  const i = head.names.indexOf(name);
  return i === -1 ? null : head.values[i]!;
}
