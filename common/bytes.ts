/**
 * Byte-array helpers shared by the control plane's readers and encoders.
 * @module
 */

/** The chunks joined into one new array (`total`, when known, saves a pass over them). */
export function concatBytes(
  chunks: readonly Uint8Array[],
  total = chunks.reduce((a, c) => a + c.byteLength, 0),
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
