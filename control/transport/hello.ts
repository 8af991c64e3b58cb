/**
 * The hello frame that opens every transport connection.
 *
 * Layout (inside an ordinary length-prefixed frame):
 * `"SKNT"` magic, u8 protocol version, u8 node id length, node id (UTF-8),
 * u8 cluster id length, cluster id (UTF-8), then optionally the sender's wall clock as a u64
 * (ms since the epoch, big-endian) so the receiver can refuse a peer whose clock is too far
 * off. Nothing else may follow; a hello without the clock (an older sender) is still read.
 * @module
 */

import { type NodeId, nodeId } from "../../common/ids.ts";

/** Size of the optional trailing clock field. */
const _CLOCK_BYTES = 8;

/** Magic bytes that start every hello: "SKNT" (skein transport). */
export const HELLO_MAGIC: Uint8Array = new Uint8Array([0x53, 0x4b, 0x4e, 0x54]);

/** The protocol version this build speaks. */
export const PROTOCOL_VERSION = 1;

/** Longest node id or cluster id in bytes (one length byte). */
export const MAX_HELLO_ID_BYTES = 255;

/** Largest hello frame payload; the decoder limit while a connection is unauthenticated. */
export const MAX_HELLO_BYTES: number = HELLO_MAGIC.length + 1 + 1 + MAX_HELLO_ID_BYTES + 1 +
  MAX_HELLO_ID_BYTES + _CLOCK_BYTES;

/** What a connecting node says about itself. */
export interface Hello {
  /** Protocol version the sender speaks. */
  readonly version: number;
  /** The node id the sender claims (checked against the channel identity). */
  readonly node: NodeId;
  /** The cluster the sender belongs to. */
  readonly clusterId: string;
  /** The sender's wall clock when it sent the hello (ms since the epoch), if it said. */
  readonly sentAtMs?: number;
}

/** Why a hello payload could not be parsed. */
export type HelloErrorReason = "bad_magic" | "unsupported_version" | "malformed";

/** Result of {@linkcode decodeHello}. */
export type HelloResult =
  | { readonly ok: true; readonly hello: Hello }
  | { readonly ok: false; readonly reason: HelloErrorReason; readonly detail: string };

const _encoder = new TextEncoder();
const _decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Encodes a hello payload (without the frame length prefix); with `sentAtMs`, the sender's
 * clock is appended.
 */
export function encodeHello(node: NodeId, clusterId: string, sentAtMs?: number): Uint8Array {
  const n = _encoder.encode(node);
  const c = _encoder.encode(clusterId);
  if (n.length === 0 || n.length > MAX_HELLO_ID_BYTES) {
    throw new RangeError(`hello: node id must be 1..${MAX_HELLO_ID_BYTES} bytes, got ${n.length}`);
  }
  if (c.length > MAX_HELLO_ID_BYTES) {
    throw new RangeError(
      `hello: cluster id must be at most ${MAX_HELLO_ID_BYTES} bytes, got ${c.length}`,
    );
  }
  if (sentAtMs !== undefined && !(Number.isSafeInteger(sentAtMs) && sentAtMs >= 0)) {
    throw new RangeError(`hello: sentAtMs must be a non-negative integer, got ${sentAtMs}`);
  }
  const clockBytes = sentAtMs === undefined ? 0 : _CLOCK_BYTES;
  const out = new Uint8Array(HELLO_MAGIC.length + 2 + n.length + 1 + c.length + clockBytes);
  out.set(HELLO_MAGIC, 0);
  let at = HELLO_MAGIC.length;
  out[at++] = PROTOCOL_VERSION;
  out[at++] = n.length;
  out.set(n, at);
  at += n.length;
  out[at++] = c.length;
  out.set(c, at);
  at += c.length;
  if (sentAtMs !== undefined) {
    new DataView(out.buffer).setBigUint64(at, BigInt(sentAtMs));
  }
  return out;
}

/** Parses and validates a hello payload; never throws on untrusted input. */
export function decodeHello(payload: Uint8Array): HelloResult {
  if (payload.length < HELLO_MAGIC.length) {
    return { ok: false, reason: "bad_magic", detail: `hello too short (${payload.length} bytes)` };
  }
  for (let i = 0; i < HELLO_MAGIC.length; i++) {
    if (payload[i] !== HELLO_MAGIC[i]) {
      return { ok: false, reason: "bad_magic", detail: "hello does not start with SKNT" };
    }
  }
  let at = HELLO_MAGIC.length;
  const version = payload[at++];
  if (version === undefined) {
    return { ok: false, reason: "malformed", detail: "hello ends before the version" };
  }
  if (version !== PROTOCOL_VERSION) {
    return {
      ok: false,
      reason: "unsupported_version",
      detail: `hello version ${version}, this node speaks ${PROTOCOL_VERSION}`,
    };
  }
  const node = _readId(payload, at, "node id");
  if (!node.ok) return node;
  at = node.next;
  const cluster = _readId(payload, at, "cluster id");
  if (!cluster.ok) return cluster;
  const rest = payload.length - cluster.next;
  if (rest !== 0 && rest !== _CLOCK_BYTES) {
    return { ok: false, reason: "malformed", detail: `hello has ${rest} trailing bytes` };
  }
  let sentAtMs: number | undefined;
  if (rest === _CLOCK_BYTES) {
    const raw = new DataView(payload.buffer, payload.byteOffset + cluster.next, _CLOCK_BYTES)
      .getBigUint64(0);
    if (raw > BigInt(Number.MAX_SAFE_INTEGER)) {
      return { ok: false, reason: "malformed", detail: "hello clock is out of range" };
    }
    sentAtMs = Number(raw);
  }
  if (node.value === "") {
    return { ok: false, reason: "malformed", detail: "hello has an empty node id" };
  }
  const hello: Hello = sentAtMs === undefined
    ? { version, node: nodeId(node.value), clusterId: cluster.value }
    : { version, node: nodeId(node.value), clusterId: cluster.value, sentAtMs };
  return { ok: true, hello };
}

type _IdResult =
  | { ok: true; value: string; next: number }
  | { ok: false; reason: "malformed"; detail: string };

function _readId(payload: Uint8Array, at: number, what: string): _IdResult {
  const len = payload[at];
  if (len === undefined) {
    return { ok: false, reason: "malformed", detail: `hello ends before the ${what} length` };
  }
  const end = at + 1 + len;
  if (end > payload.length) {
    return {
      ok: false,
      reason: "malformed",
      detail: `hello ${what} claims ${len} bytes, only ${payload.length - at - 1} present`,
    };
  }
  try {
    return { ok: true, value: _decoder.decode(payload.subarray(at + 1, end)), next: end };
  } catch {
    return { ok: false, reason: "malformed", detail: `hello ${what} is not valid UTF-8` };
  }
}
