/**
 * The hello frame that opens every transport connection.
 *
 * Layout (inside an ordinary length-prefixed frame):
 * `"SKNT"` magic, u8 protocol version, u8 node id length, node id (UTF-8),
 * u8 cluster id length, cluster id (UTF-8). Nothing may follow.
 * @module
 */

import { type NodeId, nodeId } from "../../common/ids.ts";

/** Magic bytes that start every hello: "SKNT" (skein transport). */
export const HELLO_MAGIC: Uint8Array = new Uint8Array([0x53, 0x4b, 0x4e, 0x54]);

/** The protocol version this build speaks. */
export const PROTOCOL_VERSION = 1;

/** Longest node id or cluster id in bytes (one length byte). */
export const MAX_HELLO_ID_BYTES = 255;

/** Largest hello frame payload; the decoder limit while a connection is unauthenticated. */
export const MAX_HELLO_BYTES: number = HELLO_MAGIC.length + 1 + 1 + MAX_HELLO_ID_BYTES + 1 +
  MAX_HELLO_ID_BYTES;

/** What a connecting node says about itself. */
export interface Hello {
  /** Protocol version the sender speaks. */
  readonly version: number;
  /** The node id the sender claims (checked against the channel identity). */
  readonly node: NodeId;
  /** The cluster the sender belongs to. */
  readonly clusterId: string;
}

/** Why a hello payload could not be parsed. */
export type HelloErrorReason = "bad_magic" | "unsupported_version" | "malformed";

/** Result of {@linkcode decodeHello}. */
export type HelloResult =
  | { readonly ok: true; readonly hello: Hello }
  | { readonly ok: false; readonly reason: HelloErrorReason; readonly detail: string };

const _encoder = new TextEncoder();
const _decoder = new TextDecoder("utf-8", { fatal: true });

/** Encodes a hello payload (without the frame length prefix). */
export function encodeHello(node: NodeId, clusterId: string): Uint8Array {
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
  const out = new Uint8Array(HELLO_MAGIC.length + 2 + n.length + 1 + c.length);
  out.set(HELLO_MAGIC, 0);
  let at = HELLO_MAGIC.length;
  out[at++] = PROTOCOL_VERSION;
  out[at++] = n.length;
  out.set(n, at);
  at += n.length;
  out[at++] = c.length;
  out.set(c, at);
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
  if (cluster.next !== payload.length) {
    return {
      ok: false,
      reason: "malformed",
      detail: `hello has ${payload.length - cluster.next} trailing bytes`,
    };
  }
  if (node.value === "") {
    return { ok: false, reason: "malformed", detail: "hello has an empty node id" };
  }
  return { ok: true, hello: { version, node: nodeId(node.value), clusterId: cluster.value } };
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
