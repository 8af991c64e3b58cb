/**
 * Strict HTTP/1.x head parsing (RFC 9112) over bytes, without copying the head.
 *
 * A head is located with {@linkcode findHeadEnd}, which can be resumed as more bytes arrive,
 * then parsed in one pass. Parsed heads keep byte offsets into the caller's buffer so a proxy
 * can forward header lines verbatim instead of re-encoding them.
 * @module
 *
 * This module finds and parses heads: start lines and the syntax of field lines, in one pass
 * over the bytes. The rest lives beside it: `head_types.ts` (shapes and limits),
 * `head_fields.ts` (the field table, field semantics and lookups), `head_edit.ts` (fields a
 * proxy drops) and `head_bytes.ts` (latin-1 decoding).
 *
 * Constants used in the per-byte and per-field loops stay private to the module that loops:
 * V8 folds a module's own constants into optimized code, but reads an exported or imported
 * one from its cell at every use, which measurably slowed head parsing.
 * @module
 */
import { HttpParseError } from "./errors.ts";
import {
  DEFAULT_HEAD_LIMITS,
  type HeadLimits,
  type HeadScan,
  type HttpHead,
  MAX_HEAD_BYTES,
  MAX_LEADING_EMPTY_LINES,
  type RequestHead,
  type ResponseHead,
} from "./head_types.ts";
import { latin1 } from "./head_bytes.ts";
import { applyRequestFlags, applySemantics, fieldKind, ParsedHead } from "./head_fields.ts";

export * from "./head_types.ts";
export { latin1 } from "./head_bytes.ts";
export { headerValue, markHopByHop, presetFieldStrings } from "./head_fields.ts";
export { type DropFields, dropRewrittenFields, IDENTITY_FIELDS } from "./head_edit.ts";

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
  head: ParsedHead,
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
    const kind = fieldKind(buf, p, q);
    seen |= 1 << kind;
    f.push(p, q, vs, ve, kind);
    count++;
    p = eol + 2;
  }
  if (obs) head.hasObsText = true;
  return seen;
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
  const head = new ParsedHead(buf, start, end);
  head.versionMinor = _version(buf, p + 1, eol, 400);
  head.method = _method(buf, ms, me);
  head.target = latin1(buf, ts, p);
  head.firstLineEnd = lf + 1;
  const seen = _fields(buf, lf + 1, end, head, limits);
  head.host = applySemantics(head, limits, true, seen);
  applyRequestFlags(head, seen);
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
  const head = new ParsedHead(buf, start, end);
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
    applySemantics(head, limits, false, seen);
  } catch (e) {
    if (e instanceof HttpParseError) throw new HttpParseError(e.code, 502, e.message);
    throw e;
  }
  return head;
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
