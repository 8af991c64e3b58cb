/**
 * The WAL's record format: encoding records as checksummed frames and scanning a segment's
 * bytes back into records, finding where valid frames stop.
 *
 * A segment is `wal-<seq>.log` (`seq` zero-padded to 10 digits, starting at 1, contiguous).
 * It has no header: it is a sequence of frames, all integers little-endian:
 *
 * ```
 * [u32 body length][u32 CRC-32C of body][body = u8 kind, payload bytes]
 * ```
 *
 * The body is never empty (it holds the kind), so a length of 0 is always invalid; that is
 * what makes a zero-filled (preallocated, or extended-but-not-written) tail detectable.
 * A batch of records is never split across segments; a segment rolls over before a batch
 * that would take it past `segmentBytes`.
 * @module
 */
import { crc32c } from "./crc32c.ts";
import {
  WAL_FRAME_HEADER_BYTES,
  WAL_KIND_MAX,
  WAL_RECORD_MAX_PAYLOAD_BYTES,
  type WalRecord,
} from "./wal_types.ts";

const _BODY_MAX_BYTES = WAL_RECORD_MAX_PAYLOAD_BYTES + 1;

/** The valid records at the start of a segment and where (and why) they stop. */
export interface WalScan {
  records: { kind: number; payload: Uint8Array }[];
  /** Offset of the first invalid frame, or null when the whole buffer is valid. */
  badAt: number | null;
  reason: string;
}

/** Encodes records as frames; throws RangeError for an invalid kind or oversized payload. */
export function encodeWalFrames(records: readonly WalRecord[]): Uint8Array {
  let total = 0;
  for (const r of records) {
    if (!Number.isInteger(r.kind) || r.kind < 0 || r.kind > WAL_KIND_MAX) {
      throw new RangeError(
        `WAL record kind must be an integer in 0..${WAL_KIND_MAX}, got ${r.kind}`,
      );
    }
    if (r.payload.length > WAL_RECORD_MAX_PAYLOAD_BYTES) {
      throw new RangeError(
        `WAL record payload is ${r.payload.length} bytes, max ${WAL_RECORD_MAX_PAYLOAD_BYTES}`,
      );
    }
    total += WAL_FRAME_HEADER_BYTES + 1 + r.payload.length;
  }
  const buf = new Uint8Array(total);
  const dv = new DataView(buf.buffer);
  let off = 0;
  for (const r of records) {
    const bodyLen = 1 + r.payload.length;
    const body = off + WAL_FRAME_HEADER_BYTES;
    buf[body] = r.kind;
    buf.set(r.payload, body + 1);
    dv.setUint32(off, bodyLen, true);
    dv.setUint32(off + 4, crc32c(buf.subarray(body, body + bodyLen)), true);
    off = body + bodyLen;
  }
  return buf;
}

/** Returns why the frame at `off` is invalid, or null when it is valid. */
function _frameError(buf: Uint8Array, dv: DataView, off: number): string | null {
  const left = buf.length - off;
  if (left < WAL_FRAME_HEADER_BYTES) return `incomplete frame header (${left} bytes)`;
  const len = dv.getUint32(off, true);
  if (len === 0) return "zero length (zero-filled or unwritten space)";
  if (len > _BODY_MAX_BYTES) return `length ${len} exceeds the maximum ${_BODY_MAX_BYTES}`;
  if (len > left - WAL_FRAME_HEADER_BYTES) {
    return `record of ${len} bytes extends past the end of the file`;
  }
  const body = buf.subarray(off + WAL_FRAME_HEADER_BYTES, off + WAL_FRAME_HEADER_BYTES + len);
  const want = dv.getUint32(off + 4, true);
  const got = crc32c(body);
  if (got !== want) {
    return `checksum mismatch (stored ${want.toString(16)}, computed ${got.toString(16)})`;
  }
  return null;
}

/** Splits a segment's bytes into records up to the first invalid frame. */
export function scanWalFrames(buf: Uint8Array): WalScan {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const records: WalScan["records"] = [];
  let off = 0;
  while (off < buf.length) {
    const err = _frameError(buf, dv, off);
    if (err !== null) return { records, badAt: off, reason: err };
    const len = dv.getUint32(off, true);
    const body = off + WAL_FRAME_HEADER_BYTES;
    records.push({ kind: buf[body]!, payload: buf.subarray(body + 1, body + len) });
    off = body + len;
  }
  return { records, badAt: null, reason: "" };
}

/**
 * Returns the first offset after `from` holding a valid frame, or -1.
 *
 * This is what tells a torn tail (nothing valid after the damage) from damage in the middle.
 * Candidates are cheap to reject (the length must fit in the rest of the file), so on zeros
 * or random bytes the scan is linear; a false positive can only make recovery stricter.
 */
export function nextValidWalFrame(buf: Uint8Array, from: number): number {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let p = from + 1; p + WAL_FRAME_HEADER_BYTES < buf.length; p++) {
    const len = dv.getUint32(p, true);
    if (len === 0 || len > buf.length - p - WAL_FRAME_HEADER_BYTES) continue;
    if (_frameError(buf, dv, p) === null) return p;
  }
  return -1;
}
