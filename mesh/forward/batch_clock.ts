/**
 * A millisecond clock for the proxy's per-request bookkeeping that reads the system clock once
 * per batch of work instead of at every call.
 *
 * The hot path asks for the time about seven times per request and proxy (start of the
 * exchange, retry budget, circuit-breaker bookkeeping, pool ages, outcome latency, metrics),
 * and each `performance.now()` is a runtime call: together they showed as several percent of a
 * busy proxy's CPU. {@linkcode turnNow} keeps the first reading until the microtasks already
 * queued behind it have run, so the continuations one batch of completed I/O wakes all share a
 * single reading. The price is precision under load: a reading can be as old as the batch of
 * work it belongs to (tens to a few hundred microseconds on a saturated proxy), which latency
 * metrics, balancer latency averages and millisecond timers tolerate. Code that must see time
 * pass within one synchronous run (a busy wait) must not use it.
 * @module
 */

let _cached = -1;
const _expire = () => {
  _cached = -1;
};

/** The time in ms (`performance.now()` scale), read at most once per run of queued microtasks. */
export function turnNow(): number {
  if (_cached < 0) {
    _cached = performance.now();
    queueMicrotask(_expire);
  }
  return _cached;
}
