/**
 * Header blocks as records and back (no I/O): a decoded field list becomes the record the
 * call code reads (RFC 9113 section 8.2 checks: lowercase names of token characters,
 * pseudo-headers first, known and once, values without NUL, CR or LF), and a record becomes
 * the fields to encode (pseudo-headers first, connection-specific fields dropped).
 * @module
 */
import type { HeaderField } from "./hpack.ts";
import type { WireHeaders } from "./stream.ts";

/** A decoded header block as the call code reads it (null prototype: any name is safe). */
export type HeaderRecord = Record<string, string | string[]>;

/** Pseudo-headers a request may carry. */
const _REQUEST_PSEUDO = new Set([":method", ":scheme", ":authority", ":path", ":protocol"]);
/** Fields HTTP/2 forbids (RFC 9113 section 8.2.2); `te` is allowed as `trailers` only. */
export const CONNECTION_FIELDS: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "http2-settings",
]);

/** Token characters of a field name, lowercase only (RFC 9110 tchar). */
const _NAME_OK: Uint8Array = (() => {
  const t = new Uint8Array(128);
  const chars = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz";
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1;
  return t;
})();

function _nameOk(n: string, from: number): boolean {
  if (n.length <= from) return false;
  for (let i = from; i < n.length; i++) {
    const c = n.charCodeAt(i);
    if (c >= 128 || _NAME_OK[c] !== 1) return false;
  }
  return true;
}

function _valueOk(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === 0 || c === 10 || c === 13) return false;
  }
  return true;
}

/**
 * A record's class. Its prototype is an empty object without a prototype, so no field name
 * (`__proto__`, `constructor`) reaches anything inherited, while records stay fast-mode
 * objects: `Object.create(null)` ones are dictionaries, and every `for…in` over a dictionary
 * (each block is walked several times on its way through) builds a key array.
 */
const _Record = function () {} as unknown as { new (): object };
_Record.prototype = Object.create(null);

/**
 * The record of a received block, or a reason it is malformed. `kind`: which pseudo-headers
 * are allowed (a request's, a response's, or none in trailers).
 */
export function recordOf(
  fields: HeaderField[],
  kind: "request" | "response" | "trailers",
): HeaderRecord | string {
  const h = new _Record() as unknown as HeaderRecord;
  let regular = false;
  for (const [n, v] of fields) {
    if (!_valueOk(v)) return `invalid value of ${JSON.stringify(n)}`;
    if (n.charCodeAt(0) === 58 /* ":" */) {
      if (regular) return "pseudo-header after a regular field";
      const ok = kind === "request"
        ? _REQUEST_PSEUDO.has(n)
        : kind === "response" && n === ":status";
      if (!ok) return `pseudo-header ${JSON.stringify(n)} not allowed here`;
      if (h[n] !== undefined) return `pseudo-header ${n} twice`;
      h[n] = v;
      continue;
    }
    regular = true;
    if (!_nameOk(n, 0)) return `invalid field name ${JSON.stringify(n)}`;
    if (CONNECTION_FIELDS.has(n)) return `connection-specific field ${n}`;
    if (n === "te" && v !== "trailers") return "te other than trailers";
    const prev = h[n];
    if (prev === undefined) h[n] = v;
    else if (n === "cookie") h[n] = `${prev}; ${v}`;
    else if (typeof prev === "string") h[n] = [prev, v];
    else prev.push(v);
  }
  return h;
}

/** Calls `each` for the fields of `h` to send: pseudo-headers first, forbidden fields dropped. */
export function eachField(h: WireHeaders, each: (name: string, value: string) => void): void {
  for (const k in h) {
    if (k.charCodeAt(0) !== 58) continue;
    const v = h[k];
    if (v !== undefined) each(k, String(v));
  }
  for (const k in h) {
    if (k.charCodeAt(0) === 58) continue;
    const v = h[k];
    if (v === undefined) continue;
    const n = k.toLowerCase();
    if (CONNECTION_FIELDS.has(n)) continue;
    if (n === "te" && v !== "trailers") continue;
    if (Array.isArray(v)) { for (const x of v) each(n, x); }
    else each(n, String(v));
  }
}
