/**
 * Locating a head in a byte stream: {@linkcode findHeadEnd} finds the blank line that ends it,
 * resumable as more bytes arrive, so the parser runs once over a complete head.
 * @module
 */
import { HttpParseError } from "./errors.ts";
import { type HeadScan, MAX_HEAD_BYTES, MAX_LEADING_EMPTY_LINES } from "./head_types.ts";
import { CR, LF } from "./head_bytes.ts";

/** Bytes searched for a line feed with a plain loop before falling back to indexOf. */
const LF_LOOP_SCAN_BYTES = 64;

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
