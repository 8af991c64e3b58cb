/**
 * One access-log line: its fields and their JSON form, and the `x-skein-error` cause of a
 * failed exchange as the forwarder would have named it.
 * @module
 */
import type { Outcome } from "../forward/types.ts";

/** The fields of one request's access-log line (`start` in epoch ms; written as ISO 8601). */
export interface AccessRecord {
  type: "http";
  node: string;
  /** `client` (the caller's proxy, outbound) or `server` (the callee's proxy, inbound). */
  side: "client" | "server";
  start: number;
  duration_ms: number;
  method: string;
  path: string;
  authority: string | null;
  status: number;
  /** Request body bytes (the declared length; null when chunked). */
  bytes_in: number | null;
  /** Response body bytes relayed to the client. */
  bytes_out: number;
  /** Client side: the local service calling; server side: the caller's verified SPIFFE id. */
  caller: string | null;
  destination: string;
  endpoint: string | null;
  retries: number;
  /** The `x-skein-error` cause when the proxy answered itself, else null. */
  error: string | null;
  trace_id: string | null;
  request_id: string | null;
}

/** The fields of a line known when the request starts. */
export type AccessBase = Omit<
  AccessRecord,
  "duration_ms" | "status" | "bytes_out" | "endpoint" | "retries" | "error"
>;

/** The fields of a line known when the exchange ends. */
export type AccessEnd = Pick<
  AccessRecord,
  "duration_ms" | "status" | "bytes_out" | "endpoint" | "retries" | "error"
>;

const _enc = new TextEncoder();
const _dec = new TextDecoder();

/**
 * The constant parts of a line after its per-call prefix, in field order, then `null` and the
 * usual end of a line (no retry, error, trace or request id). They live in one byte array
 * ({@linkcode _T}), found by index in {@linkcode _O}: a busy proxy runs this once per request
 * between a lot of other work, so the fewer separate objects it touches the fewer cache misses
 * it takes (thirteen small arrays meant thirteen more objects and backing stores to load).
 */
const _PARTS = [
  'Z","path":',
  ',"bytes_in":',
  ',"duration_ms":',
  ',"status":',
  ',"bytes_out":',
  ',"retries":',
  ',"error":',
  ',"trace_id":',
  ',"request_id":',
  "}",
  "null",
  ',"retries":0,"error":null,"trace_id":null,"request_id":null}',
];
const _T = _enc.encode(_PARTS.join(""));
/** Offset and length of each of {@linkcode _PARTS} in {@linkcode _T}, in pairs. */
const _O = new Int32Array(_PARTS.length * 2);
_PARTS.reduce((off, k, i) => {
  _O[2 * i] = off;
  _O[2 * i + 1] = k.length;
  return off + k.length;
}, 0);
const K_PATH = 0, K_BYTES_IN = 1, K_DURATION = 2, K_STATUS = 3, K_BYTES_OUT = 4, K_RETRIES = 5;
const K_ERROR = 6, K_TRACE_ID = 7, K_REQUEST_ID = 8, K_CLOSE = 9, K_NULL = 10, K_PLAIN_TAIL = 11;
/** The usual end of a line, as its own view for {@linkcode encodeAccessLine}'s one copy. */
const _PLAIN_TAIL = _T.subarray(
  _O[2 * K_PLAIN_TAIL]!,
  _O[2 * K_PLAIN_TAIL]! + _O[2 * K_PLAIN_TAIL + 1]!,
);
/**
 * Bytes of the constant parts (those of the line's first block, under 100, included) and the
 * numbers and date together, with room to spare.
 */
const _FIXED_BYTES = _T.length + 128 + 6 * 24 + 32;

/**
 * Most bytes {@linkcode encodeAccessLine} may write for these fields: a string may grow six
 * times when escaped (`\u001f`), a UTF-8 character takes at most three bytes per UTF-16 unit.
 */
export function accessLineMaxBytes(b: AccessBase, e: AccessEnd): number {
  return _FIXED_BYTES + 6 * (b.type.length + b.node.length + b.side.length + b.method.length +
        b.path.length + (b.authority?.length ?? 0) + (b.caller?.length ?? 0) +
        b.destination.length + (b.trace_id?.length ?? 0) + (b.request_id?.length ?? 0) +
        (e.endpoint?.length ?? 0) + (e.error?.length ?? 0));
}

/**
 * Writes the JSON line (no newline) for a request into `out` from `at`, which must have
 * {@linkcode accessLineMaxBytes} free; returns where it ends. The fields that are the same for
 * every request of one caller, destination, method, authority and endpoint on one proxy side
 * come first and are copied as one pre-encoded block; the rest are written byte by byte
 * straight from the values: this runs once per request on both proxies, and building a string
 * first (then checking it for escapes and encoding it) cost several times more.
 */
export function encodeAccessLine(b: AccessBase, e: AccessEnd, out: Uint8Array, at: number): number {
  const p = _block(b, e);
  if (p !== null) {
    out.set(p, at);
    at += p.length;
  } else {
    at = _writeBlock(out, at, b, e);
  }
  at = _putIso(out, at, b.start);
  at = _putStr(out, _key(out, at, K_PATH), b.path);
  at = _putNum(out, _key(out, at, K_BYTES_IN), b.bytes_in);
  at = _putNum(out, _key(out, at, K_DURATION), e.duration_ms);
  at = _putNum(out, _key(out, at, K_STATUS), e.status);
  at = _putNum(out, _key(out, at, K_BYTES_OUT), e.bytes_out);
  if (e.retries === 0 && e.error === null && b.trace_id === null && b.request_id === null) {
    // One native copy: a byte loop over these 60 bytes was the encoder's largest cost.
    out.set(_PLAIN_TAIL, at);
    return at + _PLAIN_TAIL.length;
  }
  at = _putNum(out, _key(out, at, K_RETRIES), e.retries);
  at = _putStr(out, _key(out, at, K_ERROR), e.error);
  at = _putStr(out, _key(out, at, K_TRACE_ID), b.trace_id);
  at = _putStr(out, _key(out, at, K_REQUEST_ID), b.request_id);
  return _key(out, at, K_CLOSE);
}

/** The JSON line (no newline) for a request, as a string (see {@linkcode encodeAccessLine}). */
export function accessLine(b: AccessBase, e: AccessEnd): string {
  const out = new Uint8Array(accessLineMaxBytes(b, e));
  return _dec.decode(out.subarray(0, encodeAccessLine(b, e, out, 0)));
}

/** Copies constant part `k` of {@linkcode _T}; returns where it ends. */
function _key(out: Uint8Array, at: number, k: number): number {
  const off = _O[2 * k]!, n = _O[2 * k + 1]!;
  for (let i = 0; i < n; i++) out[at + i] = _T[off + i]!;
  return at + n;
}

/** Copies the bytes `k`; returns where they end. */
function _bytes(out: Uint8Array, at: number, k: Uint8Array): number {
  for (let i = 0; i < k.length; i++) out[at + i] = k[i]!;
  return at + k.length;
}

/** Copies `k` then the known-plain ASCII `s` (no quotes added); returns where it ends. */
function _raw(out: Uint8Array, at: number, k: Uint8Array, s: string): number {
  at = _bytes(out, at, k);
  for (let i = 0; i < s.length; i++) out[at++] = s.charCodeAt(i);
  return at;
}

/** `s` as a JSON string value (or `null`); returns where it ends. */
function _putStr(out: Uint8Array, at: number, s: string | null): number {
  if (s === null) return _key(out, at, K_NULL);
  const start = at;
  out[at++] = 34;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // Printable ASCII without `"` or `\` goes as is; anything else takes JSON's escaping.
    if (c < 0x20 || c > 0x7e || c === 34 || c === 92) {
      return start + _enc.encodeInto(JSON.stringify(s), out.subarray(start)).written;
    }
    out[at++] = c;
  }
  out[at++] = 34;
  return at;
}

/** `n` as a JSON value (JSON has no NaN or Infinity); returns where it ends. */
function _putNum(out: Uint8Array, at: number, n: number | null): number {
  if (n === null || !Number.isFinite(n)) return _key(out, at, K_NULL);
  if (n >= 0 && n < 1e9 && n === Math.floor(n)) return _putDigits(out, at, n);
  const t = String(n);
  for (let i = 0; i < t.length; i++) out[at++] = t.charCodeAt(i);
  return at;
}

/** The second last formatted, and its ISO 8601 bytes up to the dot before the milliseconds. */
let _isoSecond = Number.NaN;
const _isoPrefix = new Uint8Array(20);

/**
 * Writes epoch ms as ISO 8601 (as `Date.toISOString`, without the closing `Z`), formatting the
 * date part once per second; returns where it ends.
 */
function _putIso(out: Uint8Array, at: number, ms: number): number {
  const t = Math.floor(ms);
  const sec = Math.floor(t / 1000);
  if (sec !== _isoSecond) {
    _isoSecond = sec;
    _enc.encodeInto(new Date(sec * 1000).toISOString().slice(0, 20), _isoPrefix);
  }
  out.set(_isoPrefix, at);
  at += _isoPrefix.length;
  const m = t - sec * 1000;
  out[at] = 48 + Math.floor(m / 100);
  out[at + 1] = 48 + (Math.floor(m / 10) % 10);
  out[at + 2] = 48 + (m % 10);
  return at + 3;
}

/** A non-negative integer below 10^9 in decimal; returns where it ends. */
function _putDigits(out: Uint8Array, at: number, n: number): number {
  let len = 1;
  for (let p = 10; p <= n; p *= 10) len++;
  for (let i = at + len - 1; i >= at; i--) {
    out[i] = 48 + (n % 10);
    n = Math.floor(n / 10);
  }
  return at + len;
}

/** One encoded line start and the fields it was encoded from. */
interface _Block {
  type: string;
  side: string;
  node: string;
  caller: string | null;
  destination: string;
  method: string;
  authority: string | null;
  endpoint: string | null;
  bytes: Uint8Array;
}

const _BLOCK_HEAD = _enc.encode('{"type":"');
const _BLOCK_KEYS = [
  '","node":',
  ',"side":"',
  '","caller":',
  ',"destination":',
  ',"method":',
  ',"authority":',
  ',"endpoint":',
  ',"start":"',
].map((k) => _enc.encode(k));
/**
 * How many line starts are kept: a proxy side sees a few callers, destinations, methods and
 * authorities, and a destination's endpoints; more combinations only re-encode, never grow.
 */
const _BLOCKS = 64;
const _blocks: _Block[] = [];
let _nextBlock = 0;
/** Where the last line's start was found: consecutive lines mostly share it. */
let _lastBlock = 0;

/** Whether block `p` was encoded from these fields. */
function _same(p: _Block, b: AccessBase, e: AccessEnd): boolean {
  return p.endpoint === e.endpoint && p.authority === b.authority && p.method === b.method &&
    p.destination === b.destination && p.caller === b.caller && p.side === b.side &&
    p.node === b.node && p.type === b.type;
}

/** Most UTF-16 units of a block's fields for it to be kept (Host comes from the client). */
const _BLOCK_MAX_UNITS = 256;
/** Lines since the blocks' hit rate was last judged, and the misses among them. */
let _seen = 0;
let _missed = 0;
/**
 * Lines left to write without looking for a block: when more combinations are in use than
 * are kept, every line would scan them all and encode a new block it never reuses.
 */
let _bypass = 0;

/**
 * The line's first bytes through `"start":"`: the same for every line of one proxy side,
 * caller, destination, method, authority and endpoint, so they are encoded once and compared
 * by field, never rebuilt per line; null when the fields are too long to keep (written in
 * place instead).
 */
function _block(b: AccessBase, e: AccessEnd): Uint8Array | null {
  if (_bypass > 0) {
    _bypass--;
    return null;
  }
  if (++_seen === 1024) {
    // Mostly missing: stop looking for a while, then judge again.
    if (_missed > 256) _bypass = 16 * 1024;
    _seen = 0;
    _missed = 0;
  }
  const last = _blocks[_lastBlock];
  if (last !== undefined && _same(last, b, e)) return last.bytes;
  for (let i = 0; i < _blocks.length; i++) {
    if (_same(_blocks[i]!, b, e)) {
      _lastBlock = i;
      return _blocks[i]!.bytes;
    }
  }
  _missed++;
  const units = b.type.length + b.node.length + (b.caller?.length ?? 0) + b.destination.length +
    b.method.length + (b.authority?.length ?? 0) + (e.endpoint?.length ?? 0);
  if (units > _BLOCK_MAX_UNITS) return null;
  const out = new Uint8Array(128 + 6 * units);
  const bytes = out.slice(0, _writeBlock(out, 0, b, e));
  // Replaced in turn once full.
  _lastBlock = _nextBlock;
  _blocks[_nextBlock] = {
    type: b.type,
    side: b.side,
    node: b.node,
    caller: b.caller,
    destination: b.destination,
    method: b.method,
    authority: b.authority,
    endpoint: e.endpoint,
    bytes,
  };
  _nextBlock = (_nextBlock + 1) % _BLOCKS;
  return bytes;
}

/** Writes the line's first bytes through `"start":"` (see `_block`); returns where they end. */
function _writeBlock(out: Uint8Array, at: number, b: AccessBase, e: AccessEnd): number {
  at = _raw(out, at, _BLOCK_HEAD, b.type);
  at = _putStr(out, _bytes(out, at, _BLOCK_KEYS[0]!), b.node);
  at = _raw(out, at, _BLOCK_KEYS[1]!, b.side);
  at = _putStr(out, _bytes(out, at, _BLOCK_KEYS[2]!), b.caller);
  at = _putStr(out, _bytes(out, at, _BLOCK_KEYS[3]!), b.destination);
  at = _putStr(out, _bytes(out, at, _BLOCK_KEYS[4]!), b.method);
  at = _putStr(out, _bytes(out, at, _BLOCK_KEYS[5]!), b.authority);
  at = _putStr(out, _bytes(out, at, _BLOCK_KEYS[6]!), e.endpoint);
  return _bytes(out, at, _BLOCK_KEYS[7]!);
}

/**
 * The cause the forwarder sent as `x-skein-error` for an exchange that ended with `status`
 * after `attempts` attempts, the last one ending in `last`; null when the upstream answered.
 */
export function causeOf(status: number, attempts: number, last: Outcome | null): string | null {
  if (last === null) return attempts === 0 && status === 503 ? "no_endpoint" : null;
  switch (last.kind) {
    case "response":
      return null;
    case "connect_failure":
      return "upstream_connect_failure";
    case "reset":
      return status === 0 ? "client_gone" : "upstream_reset";
    case "timeout":
      return "upstream_timeout";
  }
}
