/**
 * Latin-1 decoding, shared by the head parser's modules: one char per byte, so values
 * round-trip exactly, built without a copy for the short strings heads are made of.
 * @module
 */

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
