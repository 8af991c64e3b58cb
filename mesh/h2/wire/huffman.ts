/**
 * HPACK Huffman decoding (RFC 7541 section 5.2): clients such as curl, h2load and grpc-js send
 * their strings Huffman-coded. A binary tree over the code, walked a bit at a time; padding
 * longer than 7 bits, padding that is not the EOS prefix, and EOS itself are errors.
 * @module
 */
import { HUFFMAN_CODES, HUFFMAN_LENGTHS } from "./huffman_table.ts";

/** A Huffman string that does not decode (a COMPRESSION_ERROR for the connection). */
export class HuffmanError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "HuffmanError";
  }
}

/** Node `n`'s children are at `2n` (bit 0) and `2n + 1` (bit 1); a leaf holds `-1 - symbol`. */
const _tree: Int32Array = _build();

function _build(): Int32Array {
  // At most 256 inner nodes for 257 leaves.
  const t = new Int32Array(2 * 512).fill(0);
  let next = 1;
  for (let sym = 0; sym < 257; sym++) {
    const code = HUFFMAN_CODES[sym]!;
    const len = HUFFMAN_LENGTHS[sym]!;
    let node = 0;
    for (let i = len - 1; i >= 0; i--) {
      const slot = 2 * node + ((code >>> i) & 1);
      if (i === 0) {
        t[slot] = -1 - sym;
      } else {
        if (t[slot] === 0) t[slot] = next++;
        node = t[slot]!;
      }
    }
  }
  return t;
}

/** Decodes `src[from, to)` into a string (Latin-1: header bytes map one to one). */
export function huffmanDecode(src: Uint8Array, from: number, to: number): string {
  let node = 0;
  let depth = 0;
  let ones = true;
  let out = "";
  const tree = _tree;
  for (let i = from; i < to; i++) {
    const byte = src[i]!;
    for (let b = 7; b >= 0; b--) {
      const bit = (byte >>> b) & 1;
      const v = tree[2 * node + bit]!;
      depth++;
      if (bit === 0) ones = false;
      if (v < 0) {
        const sym = -1 - v;
        if (sym === 256) throw new HuffmanError("EOS in a Huffman string");
        out += String.fromCharCode(sym);
        node = 0;
        depth = 0;
        ones = true;
      } else {
        node = v;
      }
    }
  }
  if (depth > 7) throw new HuffmanError("Huffman padding longer than 7 bits");
  if (!ones) throw new HuffmanError("Huffman padding is not the EOS prefix");
  return out;
}
