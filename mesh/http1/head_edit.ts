/**
 * Dropping the fields a proxy rewrites instead of passing them on as sent: identity and
 * method-override fields, `x-forwarded-for` lines (merged into one list), a listed or repeated
 * Content-Length.
 * @module
 */
import type { HttpHead } from "./head_types.ts";

/** The names {@linkcode dropRewrittenFields} treats as identity fields (lower case). */
export const IDENTITY_FIELDS: readonly string[] = [
  "x-forwarded-client-cert",
  "x-skein-caller",
  "x-skein-forwarded-peer",
  "forwarded",
  "x-http-method-override",
  "x-http-method",
  "x-method-override",
];

/** What {@linkcode dropRewrittenFields} should drop. */
export interface DropFields {
  /** Drop the identity and method-override fields (the callee's inbound). */
  identity: boolean;
  /** Drop `x-forwarded-for` lines and return their values joined, to send as one list. */
  forwardedFor: boolean;
}

/**
 * Marks as hop-by-hop (so the head writers skip them) the fields a proxy must not pass on as
 * sent: a listed or repeated Content-Length (the writer sends one value), and per `what` the
 * identity fields and the `x-forwarded-for` lines. Returns the dropped `x-forwarded-for`
 * values joined with ", " (null when none), for the writer to append to. Only called for heads
 * whose `contentLengthListed` or `forwardingFields` is set, which the usual request is not.
 */
export function dropRewrittenFields(head: HttpHead, what: DropFields): string | null {
  let xff: string | null = null;
  let marked = false;
  const n = head.names.length;
  const names = head.names;
  const hop = head.hop;
  for (let i = 0; i < n; i++) {
    const name = names[i]!;
    let drop = false;
    if (name === "content-length") drop = head.contentLengthListed === true;
    else if (name === "x-forwarded-for") {
      if (what.forwardedFor) {
        drop = true;
        const v = head.values[i]!;
        if (v !== "") xff = xff === null ? v : `${xff}, ${v}`;
      }
    } else if (what.identity && IDENTITY_FIELDS.includes(name)) drop = true;
    if (drop) {
      hop[i] = true;
      marked = true;
    }
  }
  if (marked) head.hasHopByHop = true;
  return xff;
}
