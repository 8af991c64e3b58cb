/**
 * The HTTP/1.1 forwarding engine on `Deno.Conn`: accept loop, per-connection keep-alive loop,
 * pooled upstream connections, streaming bodies, upgrades, proxy-generated errors and drain.
 *
 * One request's path, layer by layer, reads top to bottom in `request_path.ts`. Policy enters
 * only through {@linkcode Router} / {@linkcode RouteDecision}.
 * @module
 */
export * from "./types.ts";
export * from "./pool.ts";
export * from "./forwarder.ts";
export * from "./tls_conn.ts";
export { mirrorBytes, shadowHost } from "./mirror.ts";
export { mayRetry, type TryFacts } from "./layer_retry_rule.ts";
export { type CoarseTimer, CoarseTimers } from "./coarse_timers.ts";
export { readerFor } from "./direct_read.ts";
export { closeQuietly, noDelay, pipe, type PipeResult, writeAll } from "../conn/io.ts";
