/**
 * HTTP/2 header blocks and the HTTP/1 head the rest of the proxy understands (no I/O). A
 * request's h2 headers become a {@linkcode RequestHead}, so routing, authorization, rate limits
 * and Route rules see it exactly as an HTTP/1 request; the headers sent on are rebuilt by the
 * HTTP/1 head writer, so the same fields are dropped, added and rewritten on both protocols.
 * @module
 */
import {
  ByteWriter,
  dropRewrittenFields,
  type HeadLimits,
  HttpParseError,
  parseRequestHead,
  presetFieldStrings,
  type RequestHead,
} from "../http1/mod.ts";
import { CONNECTION_FIELDS } from "./wire/fields.ts";

/** A header block as the codec gives it (pseudo-headers included). */
export type H2Headers = Record<string, string | string[] | undefined>;

/** Largest synthesized head, in bytes (the head limits bound it well before). */
const _MAX_WRITER_BYTES = 1 << 20;

/** One writer per thread for the heads built here (each is copied out before the next). */
const _writer = new ByteWriter(4096, _MAX_WRITER_BYTES);

/** A request a proxy cannot carry as HTTP/2 (answered 400 by the caller). */
export class H2RequestError extends Error {
  /** Creates the error with the reason given to the client. */
  constructor(message: string) {
    super(message);
    this.name = "H2RequestError";
  }
}

function _one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Writes one `name: value` field line. */
function _line(w: ByteWriter, name: string, value: string): void {
  w.latin1(name);
  w.latin1(": ");
  w.latin1(value);
  w.latin1("\r\n");
}

/** Whether `v` starts or ends with SP or HTAB (the HTTP/1 parser trims those). */
function _padded(v: string): boolean {
  if (v.length === 0) return false;
  const a = v.charCodeAt(0);
  const z = v.charCodeAt(v.length - 1);
  return a === 32 || a === 9 || z === 32 || z === 9;
}

/**
 * The request head of an h2 request, as if it had arrived as HTTP/1.1 (`:authority` as Host).
 * Throws {@linkcode H2RequestError} for CONNECT and a malformed block, and
 * {@linkcode HttpParseError} where the HTTP/1 parser would refuse the same head.
 */
export function requestHeadOf(h: H2Headers, limits: HeadLimits): RequestHead {
  const method = _one(h[":method"]);
  const path = _one(h[":path"]);
  if (method === undefined || method === "CONNECT") {
    throw new H2RequestError("CONNECT is not proxied over HTTP/2");
  }
  if (path === undefined || path === "") throw new H2RequestError("request without :path");
  const w = _writer;
  w.reset();
  // The fields' strings as the parsed head would decode them again from its bytes: the
  // block's own (names are lower case already), unless a value has whitespace to trim.
  const names: string[] = [];
  const values: string[] = [];
  let padded = false;
  try {
    // Written in pieces: template strings would be built (allocated) only to be copied.
    w.latin1(method);
    w.latin1(" ");
    w.latin1(path);
    w.latin1(" HTTP/1.1\r\n");
    const authority = _one(h[":authority"]) ?? _one(h["host"]);
    if (authority !== undefined) {
      _line(w, "host", authority);
      names.push("host");
      values.push(authority);
      padded ||= _padded(authority);
    }
    for (const name in h) {
      if (name.charCodeAt(0) === 58 /* ":" */ || name === "host") continue;
      const v = h[name];
      if (v === undefined) continue;
      if (typeof v === "string") {
        _line(w, name, v);
        names.push(name);
        values.push(v);
        padded ||= _padded(v);
      } else {
        for (const one of v) {
          _line(w, name, one);
          names.push(name);
          values.push(one);
          padded ||= _padded(one);
        }
      }
    }
    w.latin1("\r\n");
  } catch (e) {
    if (e instanceof RangeError) {
      throw new HttpParseError("head_too_large", 431, "request headers too large");
    }
    throw e;
  }
  if (w.len > limits.maxHeadBytes) {
    throw new HttpParseError("head_too_large", 431, "request headers too large");
  }
  // A copy: the head's fields are read from its bytes, and the writer is used again.
  const head = parseRequestHead(w.buf.slice(0, w.len), 0, w.len, limits);
  if (!padded) presetFieldStrings(head, names, values);
  return head;
}

/**
 * The h2 request headers to send on for `head`: what the HTTP/1 forwarder would send (hop-by-hop
 * and forged identity fields dropped, a repeated Content-Length sent once, `x-forwarded-for` as
 * one list ending with the client, the decision's extra lines and the inbound's caller line
 * added), with Host as `:authority`. `te: trailers` survives, the one `te` HTTP/2 allows, since
 * gRPC servers require it. Built from the head's parsed fields with the HTTP/1 forwarder's own
 * field marking ({@linkcode dropRewrittenFields}), not by writing a head and parsing it back.
 */
export function forwardedHeaders(
  head: RequestHead,
  opts: {
    clientAddr: string | null;
    extra?: string;
    callerLine?: string | null;
    teTrailers: boolean;
  },
): H2Headers {
  let xff: string | null = null;
  if (head.forwardingFields === true || head.contentLengthListed === true) {
    xff = dropRewrittenFields(head, {
      identity: opts.callerLine !== undefined,
      forwardedFor: opts.clientAddr !== null,
    });
  }
  const out: H2Headers = { ":method": head.method, ":scheme": "http", ":path": head.target };
  if (head.host !== null) out[":authority"] = head.host;
  const names = head.names;
  const values = head.values;
  const hop = head.hasHopByHop ? head.hop : null;
  for (let i = 0; i < names.length; i++) {
    if (hop === null || !hop[i]) _put(out, names[i]!, values[i]!);
  }
  if (head.contentLengthListed === true) _put(out, "content-length", String(head.contentLength));
  if (opts.clientAddr !== null) {
    _put(out, "x-forwarded-for", xff === null ? opts.clientAddr : `${xff}, ${opts.clientAddr}`);
  }
  if (opts.extra !== undefined && opts.extra !== "") _putLines(out, opts.extra);
  if (opts.callerLine != null) _putLines(out, opts.callerLine);
  if (opts.teTrailers) out["te"] = "trailers";
  return out;
}

/** Adds one field as the HTTP/1 forwarder's output parsed back would have it: connection fields, Host and `te` left out. */
function _put(out: H2Headers, name: string, v: string): void {
  if (name === "host" || name === "te" || CONNECTION_FIELDS.has(name)) return;
  const prev = out[name];
  out[name] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
}

/** Adds pre-encoded `name: value\r\n` lines (names lower-cased, values trimmed). */
function _putLines(out: H2Headers, lines: string): void {
  let p = 0;
  while (p < lines.length) {
    let e = lines.indexOf("\r\n", p);
    if (e === -1) e = lines.length;
    const c = lines.indexOf(":", p);
    if (c > p && c < e) {
      _put(out, lines.slice(p, c).trim().toLowerCase(), lines.slice(c + 1, e).trim());
    }
    p = e + 2;
  }
}

/** Whether the request asked for trailers (`te: trailers`). */
export function wantsTrailers(h: H2Headers): boolean {
  const te = _one(h["te"]);
  return te !== undefined && /(^|,)\s*trailers\s*(,|;|$)/i.test(te);
}

/** A response or trailer block to send on: pseudo-headers but `:status` and connection fields dropped. */
export function relayedHeaders(h: H2Headers, keepStatus: boolean): H2Headers {
  // The usual block (the codec refuses connection fields and stray pseudo-headers) is sent as
  // it came; neither it nor the copy is changed afterwards.
  if (!_needsRelayCopy(h, keepStatus)) return h;
  const out: H2Headers = {};
  for (const name in h) {
    if (name.charCodeAt(0) === 58 /* ":" */) {
      if (keepStatus && name === ":status") out[name] = h[name];
      continue;
    }
    if (CONNECTION_FIELDS.has(name)) continue;
    out[name] = h[name];
  }
  return out;
}

/** Whether {@linkcode relayedHeaders} must leave a field of `h` out. */
function _needsRelayCopy(h: H2Headers, keepStatus: boolean): boolean {
  for (const name in h) {
    if (name.charCodeAt(0) === 58 /* ":" */) {
      if (!keepStatus || name !== ":status") return true;
    } else if (CONNECTION_FIELDS.has(name)) return true;
  }
  return false;
}

/** Pre-encoded `name: value\r\n` lines (a local answer's extra fields) as a header block. */
export function headersOfLines(lines: string | undefined): H2Headers {
  const out: H2Headers = {};
  if (lines === undefined) return out;
  for (const line of lines.split("\r\n")) {
    const i = line.indexOf(":");
    if (i <= 0) continue;
    const name = line.slice(0, i).trim().toLowerCase();
    if (CONNECTION_FIELDS.has(name)) continue;
    out[name] = line.slice(i + 1).trim();
  }
  return out;
}
