/**
 * HPACK (RFC 7541) for one direction of one connection. The decoder keeps the dynamic table
 * the peer's encoder fills, honours size updates up to the limit this side advertised, decodes
 * Huffman strings, and bounds the decoded list (a list past the limit is marked, not stored,
 * while the table stays in step). The encoder indexes the fields it sends again and again (the
 * next request's or response's copy is one byte, and the peer's decoder reuses its strings),
 * follows the peer's table size, and never indexes credentials or long values.
 * @module
 */
import { huffmanDecode, HuffmanError } from "./huffman.ts";
import { STATIC_NAME_INDEX, STATIC_TABLE } from "./hpack_static.ts";

/** A header block that does not decode: a COMPRESSION_ERROR for the whole connection. */
export class HpackError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "HpackError";
  }
}

/** One decoded field: name, value. */
export type HeaderField = [string, string];

/** What one header block decoded to. */
export interface DecodedBlock {
  /** The fields in order (empty when {@linkcode tooLarge}). */
  fields: HeaderField[];
  /** The list went past the size limit: its fields were dropped. */
  tooLarge: boolean;
}

/** Size of an entry as RFC 7541 section 4.1 counts it. */
function _entrySize(name: string, value: string): number {
  return name.length + value.length + 32;
}

const _EMPTY = new Uint8Array(0);
const _NO_FIELDS: HeaderField[] = [];

/** Bytes converted per `String.fromCharCode` call (its argument count is bounded). */
const _CHARS_PER_CALL = 4096;

function _latin1(b: Uint8Array, from: number, to: number): string {
  if (to - from <= _CHARS_PER_CALL) {
    return String.fromCharCode.apply(null, b.subarray(from, to) as unknown as number[]);
  }
  let s = "";
  for (let i = from; i < to; i += _CHARS_PER_CALL) {
    const sub = b.subarray(i, Math.min(to, i + _CHARS_PER_CALL));
    s += String.fromCharCode.apply(null, sub as unknown as number[]);
  }
  return s;
}

/** Decodes the header blocks a peer sends on one connection. */
export class HpackDecoder {
  /** Newest entry last. */
  readonly #table: HeaderField[] = [];
  #size = 0;
  #max: number;
  readonly #limit: number;
  readonly #maxListBytes: number;

  /**
   * `tableLimit`: the SETTINGS_HEADER_TABLE_SIZE this side advertised (the most a size update
   * may ask for); `maxListBytes`: the largest decoded list kept (RFC 7541 sizes).
   */
  constructor(tableLimit: number, maxListBytes: number) {
    this.#limit = tableLimit;
    this.#max = tableLimit;
    this.#maxListBytes = maxListBytes;
  }

  /** Bytes the dynamic table holds now (tests). */
  get tableSize(): number {
    return this.#size;
  }

  /** The dynamic table's entries, newest first (tests). */
  get entries(): HeaderField[] {
    return [...this.#table].reverse();
  }

  // State of the block being decoded (one at a time: decoding is synchronous), kept on the
  // decoder so that a block costs no closures.
  #b: Uint8Array = new Uint8Array(0);
  #p = 0;
  #fields: HeaderField[] = [];
  #listBytes = 0;
  #tooLarge = false;

  /** Decodes one complete header block; throws {@linkcode HpackError}. */
  decode(b: Uint8Array): DecodedBlock {
    const fields: HeaderField[] = [];
    this.#b = b;
    this.#p = 0;
    this.#fields = fields;
    this.#listBytes = 0;
    this.#tooLarge = false;
    let sawField = false;
    try {
      while (this.#p < b.length) {
        const c = b[this.#p]!;
        if (c & 0x80) {
          // Indexed field: the table's own pair (never changed) is the field.
          this.#emit(this.#at(this.#int(7)));
          sawField = true;
        } else if (c & 0x40) {
          // Literal with incremental indexing.
          const idx = this.#int(6);
          const name = idx === 0 ? this.#str() : this.#at(idx)[0];
          const f: HeaderField = [name, this.#str()];
          this.#insert(f);
          this.#emit(f);
          sawField = true;
        } else if (c & 0x20) {
          // Dynamic table size update: only before the block's first field.
          if (sawField) throw new HpackError("table size update after a field");
          const size = this.#int(5);
          if (size > this.#limit) throw new HpackError("table size update above the limit");
          this.#max = size;
          this.#evict(0);
        } else {
          // Literal without indexing (0000) or never indexed (0001).
          const idx = this.#int(4);
          const name = idx === 0 ? this.#str() : this.#at(idx)[0];
          this.#emit([name, this.#str()]);
          sawField = true;
        }
      }
      return { fields, tooLarge: this.#tooLarge };
    } finally {
      this.#b = _EMPTY;
      this.#fields = _NO_FIELDS;
    }
  }

  /** An integer with a `prefixBits`-bit prefix at the read position. */
  #int(prefixBits: number): number {
    const b = this.#b;
    const mask = (1 << prefixBits) - 1;
    let v = b[this.#p++]! & mask;
    if (v < mask) return v;
    let shift = 0;
    for (;;) {
      if (this.#p >= b.length) throw new HpackError("truncated integer");
      const c = b[this.#p++]!;
      v += (c & 0x7f) * 2 ** shift;
      shift += 7;
      if (v > 0x7fffffff) throw new HpackError("integer overflow");
      if ((c & 0x80) === 0) return v;
    }
  }

  /** A string literal at the read position. */
  #str(): string {
    const b = this.#b;
    if (this.#p >= b.length) throw new HpackError("truncated string");
    const huff = (b[this.#p]! & 0x80) !== 0;
    const len = this.#int(7);
    if (len > b.length - this.#p) throw new HpackError("string longer than its block");
    const from = this.#p;
    this.#p += len;
    if (!huff) return _latin1(b, from, this.#p);
    try {
      return huffmanDecode(b, from, this.#p);
    } catch (e) {
      if (e instanceof HuffmanError) throw new HpackError(e.message);
      throw e;
    }
  }

  /** Adds a field to the block's list, unless the list went past its limit. */
  #emit(f: HeaderField): void {
    if (this.#tooLarge) return;
    this.#listBytes += _entrySize(f[0], f[1]);
    if (this.#listBytes > this.#maxListBytes) {
      this.#tooLarge = true;
      this.#fields.length = 0;
      return;
    }
    this.#fields.push(f);
  }

  #at(idx: number): HeaderField {
    if (idx === 0) throw new HpackError("index 0");
    if (idx <= STATIC_TABLE.length) return STATIC_TABLE[idx - 1] as HeaderField;
    const d = idx - STATIC_TABLE.length;
    const e = this.#table[this.#table.length - d];
    if (e === undefined) throw new HpackError(`index ${idx} past the table`);
    return e;
  }

  #insert(f: HeaderField): void {
    const size = _entrySize(f[0], f[1]);
    this.#evict(size);
    // An entry larger than the table empties it and is not added (RFC 7541 section 4.4).
    if (size > this.#max) return;
    this.#table.push(f);
    this.#size += size;
  }

  /** Evicts the oldest entries until `room` more bytes fit. */
  #evict(room: number): void {
    let drop = 0;
    while (this.#size + room > this.#max && drop < this.#table.length) {
      const [n, v] = this.#table[drop++]!;
      this.#size -= _entrySize(n, v);
    }
    if (drop > 0) this.#table.splice(0, drop);
  }
}

/** A growable byte buffer the encoder and the frame writer append to. */
export class Bytes {
  /** The bytes; valid up to {@linkcode length}. */
  buf: Uint8Array;
  /** Bytes written. */
  length = 0;

  /** Creates a buffer of `size` bytes to start with. */
  constructor(size = 1024) {
    this.buf = new Uint8Array(size);
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.buf.subarray(0, this.length));
    this.buf = b;
  }

  /** Appends one byte. */
  byte(v: number): void {
    this.ensure(1);
    this.buf[this.length++] = v;
  }

  /** Appends `src`. */
  bytes(src: Uint8Array): void {
    this.ensure(src.length);
    this.buf.set(src, this.length);
    this.length += src.length;
  }
}

/** Encodes integer `v` with an `prefixBits` prefix whose upper bits are `flags`. */
function _int(out: Bytes, flags: number, prefixBits: number, v: number): void {
  const mask = (1 << prefixBits) - 1;
  if (v < mask) {
    out.byte(flags | v);
    return;
  }
  out.byte(flags | mask);
  v -= mask;
  while (v >= 128) {
    out.byte((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.byte(v);
}

/** A raw (not Huffman) string literal, its characters as bytes (Latin-1). */
function _str(out: Bytes, s: string): void {
  _int(out, 0, 7, s.length);
  out.ensure(s.length);
  const b = out.buf;
  let o = out.length;
  for (let i = 0; i < s.length; i++) b[o++] = s.charCodeAt(i) & 0xff;
  out.length = o;
}

/** Fields never put in the table: credentials (compression side channels), per-call values. */
const _NOT_INDEXED = new Set([
  "authorization",
  "proxy-authorization",
  "cookie",
  "set-cookie",
  "content-length",
  "grpc-timeout",
  "x-request-id",
  "traceparent",
  "tracestate",
  "x-b3-traceid",
  "x-b3-spanid",
  "x-b3-parentspanid",
  "b3",
  "date",
]);
/** Longest value the encoder indexes. */
const _MAX_INDEXED_VALUE = 256;
/** The table size this encoder uses at most (the default; peers may ask for less). */
const _ENCODER_TABLE = 4096;

/** Encodes the header blocks this side sends on one connection. */
export class HpackEncoder {
  #max = _ENCODER_TABLE;
  #update: number | null = null;
  /** Entries oldest first from `#head`: name, value and size. */
  #names: string[] = [];
  #values: string[] = [];
  #sizes: number[] = [];
  #head = 0;
  #size = 0;
  /** Entries inserted so far; entry number `n` has dynamic index `#inserted - n`. */
  #inserted = 0;
  /** Entry numbers by name, then value (no key string built per field). */
  readonly #byName = new Map<string, Map<string, number>>();

  /** The peer's SETTINGS_HEADER_TABLE_SIZE: this encoder shrinks to it and says so. */
  setTableLimit(n: number): void {
    const m = Math.min(n, _ENCODER_TABLE);
    if (m === this.#max) return;
    this.#max = m;
    this.#update = m;
    this.#evict(0);
  }

  /** Starts a header block (a pending size update goes first). */
  begin(out: Bytes): void {
    if (this.#update !== null) {
      _int(out, 0x20, 5, this.#update);
      this.#update = null;
    }
  }

  /** Appends one field. */
  field(out: Bytes, name: string, value: string): void {
    const pair = _staticPair(name, value);
    if (pair !== 0) return _int(out, 0x80, 7, pair);
    if (value.length > _MAX_INDEXED_VALUE || _NOT_INDEXED.has(name)) {
      // Credentials are sent "never indexed", so no intermediary indexes them either.
      return _literal(out, _NOT_INDEXED.has(name) ? 0x10 : 0x00, 4, name, value);
    }
    const n = this.#byName.get(name)?.get(value);
    if (n !== undefined) return _int(out, 0x80, 7, STATIC_TABLE.length + this.#inserted - n);
    _literal(out, 0x40, 6, name, value);
    this.#insert(name, value, name.length + value.length + 32);
  }

  #insert(name: string, value: string, size: number): void {
    this.#evict(size);
    if (size > this.#max) return;
    this.#names.push(name);
    this.#values.push(value);
    this.#sizes.push(size);
    this.#size += size;
    let byValue = this.#byName.get(name);
    if (byValue === undefined) this.#byName.set(name, byValue = new Map());
    byValue.set(value, this.#inserted++);
  }

  #evict(room: number): void {
    while (this.#size + room > this.#max && this.#head < this.#names.length) {
      const name = this.#names[this.#head]!;
      const value = this.#values[this.#head]!;
      this.#size -= this.#sizes[this.#head]!;
      // The entry's number: those before it were inserted earlier, in order.
      const n = this.#inserted - (this.#names.length - this.#head);
      const byValue = this.#byName.get(name)!;
      if (byValue.get(value) === n) {
        byValue.delete(value);
        if (byValue.size === 0) this.#byName.delete(name);
      }
      this.#head++;
    }
    if (this.#head > 64 && this.#head * 2 > this.#names.length) {
      this.#names = this.#names.slice(this.#head);
      this.#values = this.#values.slice(this.#head);
      this.#sizes = this.#sizes.slice(this.#head);
      this.#head = 0;
    }
  }
}

/** The static index of `name: value`, or 0 (pairs with a value: pseudo-headers, one more). */
function _staticPair(name: string, value: string): number {
  switch (name) {
    case ":method":
      return value === "GET" ? 2 : value === "POST" ? 3 : 0;
    case ":path":
      return value === "/" ? 4 : value === "/index.html" ? 5 : 0;
    case ":scheme":
      return value === "http" ? 6 : value === "https" ? 7 : 0;
    case ":status":
      return _STATUS_INDEX[value] ?? 0;
    case "accept-encoding":
      return value === "gzip, deflate" ? 16 : 0;
    default:
      return 0;
  }
}

/** Static indices of the statuses the table holds. */
const _STATUS_INDEX: Record<string, number> = Object.assign(Object.create(null), {
  "200": 8,
  "204": 9,
  "206": 10,
  "304": 11,
  "400": 12,
  "404": 13,
  "500": 14,
});

/** A literal field: `flags` and a `bits`-bit prefix for the name's static index, or the name. */
function _literal(out: Bytes, flags: number, bits: number, name: string, value: string): void {
  const idx = STATIC_NAME_INDEX.get(name);
  if (idx !== undefined) {
    _int(out, flags, bits, idx);
  } else {
    out.byte(flags);
    _str(out, name);
  }
  _str(out, value);
}

/** Appends the HPACK encoding of one field to `out` without touching any table. */
export function encodeField(out: Bytes, name: string, value: string): void {
  const pair = _staticPair(name, value);
  if (pair !== 0) return _int(out, 0x80, 7, pair);
  _literal(out, 0x00, 4, name, value);
}
