/**
 * The few DER encodings a PKCS#10 request needs (X.690), so a proxy writes its CSR without an
 * X.509 library (which costs its isolate ~7 MB resident, 6 MB of it heap, for one request).
 * @module
 */

function _length(n: number): Uint8Array {
  if (n < 0x80) return Uint8Array.of(n);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

/** A tag-length-value with the given tag byte around `content`. */
export function tlv(tag: number, ...content: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const len = content.reduce((a, c) => a + c.length, 0);
  const head = _length(len);
  const out = new Uint8Array(1 + head.length + len);
  out[0] = tag;
  out.set(head, 1);
  let off = 1 + head.length;
  for (const c of content) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** SEQUENCE of the encoded parts. */
export function sequence(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  return tlv(0x30, ...parts);
}

/** SET of the encoded parts (callers pass one part, or parts already in DER order). */
export function set(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  return tlv(0x31, ...parts);
}

/** OBJECT IDENTIFIER from its dotted form. */
export function oid(dotted: string): Uint8Array<ArrayBuffer> {
  const arcs = dotted.split(".").map(Number);
  const bytes: number[] = [40 * arcs[0]! + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const chunk: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) {
      chunk.unshift(0x80 | (v & 0x7f));
    }
    bytes.push(...chunk);
  }
  return tlv(0x06, Uint8Array.from(bytes));
}

/** A non-negative INTEGER from big-endian unsigned bytes (minimal form). */
export function unsignedInteger(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const v = bytes.subarray(i);
  return (v[0]! & 0x80) !== 0 ? tlv(0x02, Uint8Array.of(0), v) : tlv(0x02, v);
}

/** UTF8String. */
export function utf8String(s: string): Uint8Array<ArrayBuffer> {
  return tlv(0x0c, new TextEncoder().encode(s));
}

/** OCTET STRING. */
export function octetString(b: Uint8Array): Uint8Array<ArrayBuffer> {
  return tlv(0x04, b);
}

/** BIT STRING with no unused bits. */
export function bitString(b: Uint8Array): Uint8Array<ArrayBuffer> {
  return tlv(0x03, Uint8Array.of(0), b);
}
