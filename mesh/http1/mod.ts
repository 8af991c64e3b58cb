/**
 * HTTP/1.1 on bytes for the proxy hot path: strict head parsing (RFC 9112), streaming
 * chunked framing, and the head rewriting a forwarding proxy does.
 *
 * Nothing here does I/O; `mesh/forward/` drives these functions over sockets.
 * @module
 */
export * from "./errors.ts";
export * from "./head.ts";
export * from "./chunked.ts";
export * from "./writer.ts";
export * from "./rewrite.ts";
export { H2_PREFACE, startsWithH2Preface } from "./h2_preface.ts";
