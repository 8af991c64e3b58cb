/**
 * Writing one header block as frames (no I/O): encoded straight into the frame writer's buffer
 * behind a reserved HEADERS frame header, so the usual block costs no scratch buffer and no
 * copy; a block larger than the peer's frame size is moved to a scratch buffer and split into
 * HEADERS and CONTINUATION frames.
 * @module
 */
import { eachField } from "./fields.ts";
import { Flag, FRAME_HEADER_BYTES, FrameType } from "./frames.ts";
import type { Bytes, HpackEncoder } from "./hpack.ts";
import type { WireHeaders } from "./stream.ts";
import type { FrameWriter } from "./writer.ts";

/** The encoder and buffer of the block being written (one at a time: writing is synchronous). */
let _encoder: HpackEncoder | null = null;
let _to: Bytes | null = null;
/** Appends one field to the block being written (one function for every block: no closure each). */
const _encodeOne = (n: string, v: string) => _encoder!.field(_to!, n, v);

/**
 * Appends the frames of header block `h` for stream `id` to `w`, encoded with `encoder`
 * (whose table the peer's decoder follows), in frames of at most `maxFrame` bytes.
 */
export function writeHeaderBlock(
  w: FrameWriter,
  scratch: Bytes,
  encoder: HpackEncoder,
  h: WireHeaders,
  id: number,
  endStream: boolean,
  maxFrame: number,
): void {
  const out = w.out;
  const at = w.reserveFrame();
  _encoder = encoder;
  _to = out;
  try {
    encoder.begin(out);
    eachField(h, _encodeOne);
  } catch (e) {
    // No half block may stay queued in front of the next frame.
    out.length = at;
    throw e;
  } finally {
    _encoder = null;
    _to = null;
  }
  const end = endStream ? Flag.END_STREAM : 0;
  if (out.length - at - FRAME_HEADER_BYTES <= maxFrame) {
    w.sealFrame(at, FrameType.HEADERS, Flag.END_HEADERS | end, id);
    return;
  }
  const sc = scratch;
  sc.length = 0;
  sc.bytes(out.buf.subarray(at + FRAME_HEADER_BYTES, out.length));
  out.length = at;
  let off = 0;
  let first = true;
  do {
    const n = Math.min(maxFrame, sc.length - off);
    const last = off + n >= sc.length;
    const flags = (last ? Flag.END_HEADERS : 0) | (first ? end : 0);
    w.frame(n, first ? FrameType.HEADERS : FrameType.CONTINUATION, flags, id);
    w.out.bytes(sc.buf.subarray(off, off + n));
    off += n;
    first = false;
  } while (off < sc.length);
}
