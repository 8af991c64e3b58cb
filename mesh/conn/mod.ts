/**
 * What every connection-carrying part of the mesh shares: byte-moving helpers over `Deno.Conn`
 * and the small interface of a connection that can be refused unread. `mesh/forward/`,
 * `mesh/mux/` and `mesh/tcp/` import it; it imports nothing of ours.
 * @module
 */
export * from "./io.ts";
export * from "./refusable.ts";
