/**
 * The HTTP/2 connection preface (RFC 9113 section 3.4). Its first 18 bytes,
 * `PRI * HTTP/2.0\r\n\r\n`, look like an HTTP/1 request head of version 2.0, so the HTTP/1
 * parser reaches it as a version error: only that error path asks whether the connection is
 * really HTTP/2 with prior knowledge, and the usual HTTP/1 request pays nothing for the check.
 * @module
 */

/** The whole client preface, 24 bytes. */
export const H2_PREFACE: Uint8Array = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** The part of the preface an HTTP/1 head scan stops at (it ends in CRLF CRLF). */
const _HEAD_PART = 18;

/**
 * Whether `buf[start, len)` begins with the preface's head part (`PRI * HTTP/2.0` and the blank
 * line), and whatever follows agrees with the rest of the preface as far as it goes.
 */
export function startsWithH2Preface(buf: Uint8Array, start: number, len: number): boolean {
  if (len - start < _HEAD_PART) return false;
  const n = Math.min(len - start, H2_PREFACE.length);
  for (let i = 0; i < n; i++) if (buf[start + i] !== H2_PREFACE[i]) return false;
  return true;
}
