/**
 * Reading and editing the fields of a parsed head after parsing: value lookup by name, marking
 * fields hop-by-hop, and dropping the fields a proxy rewrites (identity, x-forwarded-for,
 * listed Content-Length). Parsed heads are searched as bytes so a lookup decodes one value.
 * @module
 */
import type { HttpHead } from "./head_types.ts";
import { latin1 } from "./head_bytes.ts";
import { F_COLON, F_LINE, F_VE, F_VS, FIELD_STRIDE, nameIs, ParsedHead } from "./head_fields.ts";

/** Returns the first value of a field (name lower-cased), or null. */
export function headerValue(head: HttpHead, name: string): string | null {
  if (head instanceof ParsedHead && head._names === null) {
    // Compare names as bytes so a lookup decodes one value, not the whole head.
    const f = head._f;
    const buf = head.raw;
    for (let o = 0; o < f.length; o += FIELD_STRIDE) {
      if (nameIs(buf, f[o + F_LINE]!, f[o + F_COLON]!, name)) {
        return head._values !== null
          ? head._values[o / FIELD_STRIDE]!
          : latin1(buf, f[o + F_VS]!, f[o + F_VE]!);
      }
    }
    return null;
  }
  const i = head.names.indexOf(name);
  return i === -1 ? null : head.values[i]!;
}

/**
 * Marks every field named `name` (lower-cased) hop-by-hop so the rewriter drops it, without
 * decoding the other names. Returns how many fields were marked.
 */
export function markHopByHop(head: HttpHead, name: string): number {
  let marked = 0;
  if (head instanceof ParsedHead && head._names === null) {
    const f = head._f;
    for (let o = 0; o < f.length; o += FIELD_STRIDE) {
      if (!nameIs(head.raw, f[o + F_LINE]!, f[o + F_COLON]!, name)) continue;
      head.hop[o / FIELD_STRIDE] = true;
      marked++;
    }
  } else {
    const names = head.names;
    for (let i = names.indexOf(name); i !== -1; i = names.indexOf(name, i + 1)) {
      head.hop[i] = true;
      marked++;
    }
  }
  if (marked > 0) head.hasHopByHop = true;
  return marked;
}

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
