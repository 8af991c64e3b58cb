/**
 * Byte classes of RFC 9110/9112 as lookup tables, and the byte-level helpers every part of the
 * head parser shares (latin-1 decoding, ASCII case-insensitive comparison). One lookup per
 * byte keeps the parser's loops branch-light.
 * @module
 */

/** Carriage return. */
export const CR = 13;
/** Line feed. */
export const LF = 10;
/** Space. */
export const SP = 32;
/** Horizontal tab. */
export const HTAB = 9;
/** The colon after a field name. */
export const COLON = 58;

/** tchar per RFC 9110 section 5.6.2. */
export const TCHAR = new Uint8Array(256);
/** Bytes allowed in a field value: VCHAR, SP, HTAB, obs-text. */
export const VCHAR = new Uint8Array(256);
/** FIELD_BYTE entry of a byte allowed in a value below 0x80. */
const FB_PLAIN = 1;
/** FIELD_BYTE entry of obs-text (0x80-0xff), allowed but recorded in `hasObsText`. */
export const FB_OBS = 2;
/** VCHAR with obs-text told apart, so the value scan needs one lookup per byte. */
export const FIELD_BYTE = new Uint8Array(256);
{
  for (let c = 0x21; c <= 0x7e; c++) VCHAR[c] = 1;
  for (let c = 0x80; c <= 0xff; c++) VCHAR[c] = 1;
  VCHAR[SP] = 1;
  VCHAR[HTAB] = 1;
  const t = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  for (let i = 0; i < t.length; i++) TCHAR[t.charCodeAt(i)] = 1;
  for (let c = 0; c < 256; c++) if (VCHAR[c] === 1) FIELD_BYTE[c] = c >= 0x80 ? FB_OBS : FB_PLAIN;
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
export function lowerByte(b: number): number {
  return b >= 65 && b <= 90 ? b + 32 : b;
}

/**
 * Whether `buf[p, p + lit.length)` equals `lit` ignoring ASCII case. `lit` must be lower-case
 * letters, digits and `-` only: then `| 0x20` can only confuse a byte with a control byte or
 * CR, which never reach this point (field names are tchar, values exclude controls).
 */
export function eqLower(buf: Uint8Array, p: number, lit: string): boolean {
  for (let i = 0; i < lit.length; i++) {
    if ((buf[p + i]! | 0x20) !== lit.charCodeAt(i)) return false;
  }
  return true;
}
