/**
 * The epoch-millisecond clock of access-log lines and spans, read from the forwarder's per-turn
 * clock ({@linkcode turnNow}) instead of `Date.now()`: every recorded request reads the wall
 * clock twice on each proxy, and the turn clock serves all requests one batch of I/O wakes
 * from a single reading. The offset to the wall clock is taken again every second, so a
 * stepped or slewed system clock shows in the lines within a second.
 * @module
 */
import { turnNow } from "../forward/batch_clock.ts";

/** How often the offset between the monotonic and the wall clock is read again, in ms. */
const RESYNC_MS = 1000;

let _offset = 0;
let _syncedAt = Number.NEGATIVE_INFINITY;

/** The time in epoch ms, as precise as the turn clock (see the module doc). */
export function wallNow(): number {
  const t = turnNow();
  if (t - _syncedAt >= RESYNC_MS) {
    _syncedAt = t;
    _offset = Date.now() - performance.now();
  }
  return _offset + t;
}
