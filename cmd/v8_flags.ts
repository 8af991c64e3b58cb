/**
 * The V8 flags skein runs with, wherever it is started: `deno task skein`/`demo`, the demo's
 * own children, the benchmarks, the container, and the compiled binary (`deno compile` bakes
 * them in, so the systemd units need none).
 *
 * `--no-memory-reducer`: V8 shrinks an isolate's heap after a quiet spell, so the first
 * seconds of traffic after one run with a small young generation and collect garbage far more
 * often. A proxy is sized for its peak, and that cost fell on every burst. In `deno task bench
 * mesh`, whose rounds leave each pair idle for about 30 s, skein's pair gave 0.93–0.97x
 * HAProxy's throughput in most runs without the flag and 0.97–1.06x with it. The price is
 * that heaps keep the size the load grew them to.
 * @module
 */

/** The flags, in the form `--v8-flags` takes them. */
export const V8_FLAGS: readonly string[] = ["--no-memory-reducer"];

/** The `--v8-flags=...` argument of `deno run` and `deno compile`. */
export const V8_FLAGS_ARG = `--v8-flags=${V8_FLAGS.join(",")}`;
