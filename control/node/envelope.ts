/**
 * What the driver puts inside Raft entries and snapshots besides registry commands: the
 * addresses of control nodes, which every node needs to dial its peers and forward to the
 * leader. Kept out of the registry because it is cluster plumbing, not catalog data.
 * @module
 */
import { z } from "zod";

/** Marks an entry as member information rather than a registry command (which starts with `{`). */
export const MEMBER_ENTRY_TAG = 0x00;

/** Where a control node can be reached. */
export const MemberAddress = z.strictObject({
  node: z.string().min(1).max(63),
  /** Raft peer address `host:port`. */
  raft: z.string().min(3).max(300),
  /** API base URL, or null while unknown. */
  api: z.string().max(300).nullable(),
});

/** Where a control node can be reached. */
export type MemberAddress = z.infer<typeof MemberAddress>;

const _enc = new TextEncoder();
const _dec = new TextDecoder();

/** Encodes a member-address entry. */
export function encodeMemberEntry(m: MemberAddress): Uint8Array {
  const json = _enc.encode(JSON.stringify(m));
  const out = new Uint8Array(json.length + 1);
  out[0] = MEMBER_ENTRY_TAG;
  out.set(json, 1);
  return out;
}

/** Whether entry data is a member-address entry. */
export function isMemberEntry(data: Uint8Array): boolean {
  return data.length > 0 && data[0] === MEMBER_ENTRY_TAG;
}

/** Decodes a member-address entry; throws on malformed bytes. */
export function decodeMemberEntry(data: Uint8Array): MemberAddress {
  return MemberAddress.parse(JSON.parse(_dec.decode(data.subarray(1))));
}

const SnapshotHeader = z.strictObject({
  version: z.literal(1),
  members: z.array(MemberAddress).max(1000),
});

/** Packs the member table and the registry snapshot into one Raft snapshot payload. */
export function encodeSnapshotPayload(members: MemberAddress[], registry: Uint8Array): Uint8Array {
  const header = _enc.encode(JSON.stringify({ version: 1, members }));
  const out = new Uint8Array(4 + header.length + registry.length);
  new DataView(out.buffer).setUint32(0, header.length);
  out.set(header, 4);
  out.set(registry, 4 + header.length);
  return out;
}

/** Unpacks a snapshot payload; an empty payload is an empty cluster. */
export function decodeSnapshotPayload(
  data: Uint8Array,
): { members: MemberAddress[]; registry: Uint8Array | null } {
  if (data.length === 0) return { members: [], registry: null };
  if (data.length < 4) throw new Error(`snapshot payload of ${data.length} bytes is truncated`);
  const len = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0);
  if (4 + len > data.length) {
    throw new Error(`snapshot header of ${len} bytes overruns the payload`);
  }
  const header = SnapshotHeader.parse(JSON.parse(_dec.decode(data.subarray(4, 4 + len))));
  const rest = data.subarray(4 + len);
  return { members: header.members, registry: rest.length > 0 ? rest : null };
}

/** Frame types on the peer transport: Raft messages and node announcements. */
export const FRAME_RAFT = 1;
/** A node's announcement of its API URL, sent on a timer. */
export const FRAME_ANNOUNCE = 2;
