/**
 * A SETTINGS frame read and checked (RFC 9113 section 6.5): the values a peer may not send are
 * connection errors. No I/O.
 * @module
 */
import {
  DEFAULT_MAX_FRAME,
  ErrorCode,
  Flag,
  H2ConnectionError,
  MAX_WINDOW,
  read32,
  Setting,
} from "./frames.ts";

/** The settings of a SETTINGS frame `b[s, e)`, in order; null for an ACK. */
export function readSettings(
  flags: number,
  id: number,
  b: Uint8Array,
  s: number,
  e: number,
): [number, number][] | null {
  if (id !== 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "SETTINGS on a stream");
  if ((flags & Flag.ACK) !== 0) {
    if (e !== s) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS ACK size");
    return null;
  }
  if ((e - s) % 6 !== 0) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS size");
  const out: [number, number][] = [];
  for (let p = s; p < e; p += 6) {
    const key = (b[p]! << 8) | b[p + 1]!;
    const v = read32(b, p + 2);
    if (key === Setting.ENABLE_PUSH && v > 1) {
      throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "ENABLE_PUSH");
    }
    if (key === Setting.INITIAL_WINDOW_SIZE && v > MAX_WINDOW) {
      throw new H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE");
    }
    if (key === Setting.MAX_FRAME_SIZE && (v < DEFAULT_MAX_FRAME || v > 0xffffff)) {
      throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "MAX_FRAME_SIZE");
    }
    out.push([key, v]);
  }
  return out;
}
