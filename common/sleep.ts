/**
 * A timer that an AbortSignal cuts short, shared by every loop that waits between tries.
 * @module
 */

/** Resolves after `ms`, or as soon as `signal` aborts; never leaves a timer behind. */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
