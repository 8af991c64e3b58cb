/**
 * What a proxy changes in a head on the way through: hop-by-hop fields are dropped
 * (RFC 9110 section 7.6.1), `x-forwarded-for` gains the client, and responses the proxy makes
 * itself say who made them and why.
 * @module
 */
import { dropRewrittenFields, type HttpHead, type RequestHead, type ResponseHead } from "./head.ts";
import { ByteWriter } from "./writer.ts";

const CRLF = new Uint8Array([13, 10]);
const X_FORWARDED_FOR = new TextEncoder().encode("x-forwarded-for: ");
const LIST_SEPARATOR = new TextEncoder().encode(", ");
const CONTENT_LENGTH = new TextEncoder().encode("content-length: ");

/** Header the callee's proxy sets to the caller's verified SPIFFE id (and drops if sent). */
export const CALLER_HEADER = "x-skein-caller";

/** Most caller lines {@linkcode callerLine} keeps (then it starts over). */
const MAX_CALLER_LINES = 1024;
const _callerLines = new Map<string, string | null>();

/**
 * The `x-skein-caller: <id>\r\n` line for a verified peer id, kept per id (asked once per
 * inbound connection or mux stream, about a handful of callers); null for no id, or one that
 * is not printable ASCII (a certificate URI always is; nothing else may reach a header line).
 */
export function callerLine(identity: string | null): string | null {
  if (identity === null) return null;
  let line = _callerLines.get(identity);
  if (line === undefined) {
    line = /^[\x21-\x7e]{1,2048}$/.test(identity) ? `${CALLER_HEADER}: ${identity}\r\n` : null;
    if (_callerLines.size >= MAX_CALLER_LINES) _callerLines.clear();
    _callerLines.set(identity, line);
  }
  return line;
}

/** Writes the one `content-length` line of a head whose Content-Length was listed or repeated. */
function _contentLengthLine(w: ByteWriter, head: HttpHead): void {
  w.bytes(CONTENT_LENGTH);
  w.latin1(String(head.contentLength));
  w.bytes(CRLF);
}

/** Copies the field lines of `head` that are not hop-by-hop, in runs. */
function _copyEndToEnd(w: ByteWriter, head: HttpHead): void {
  if (!head.hasHopByHop) {
    // Field lines are contiguous, from the end of the start line to the blank line.
    w.bytes(head.raw, head.firstLineEnd, head.end - 2);
    return;
  }
  const hop = head.hop;
  const lineStarts = head.lineStarts;
  const lineEnds = head.lineEnds;
  const n = lineStarts.length;
  let runStart = -1;
  let runEnd = -1;
  for (let i = 0; i < n; i++) {
    if (hop[i]) {
      if (runStart !== -1) w.bytes(head.raw, runStart, runEnd);
      runStart = -1;
      continue;
    }
    if (runStart === -1) runStart = lineStarts[i]!;
    runEnd = lineEnds[i]!;
  }
  if (runStart !== -1) w.bytes(head.raw, runStart, runEnd);
}

/**
 * Writes the head to send upstream: always HTTP/1.1 on a keep-alive connection, hop-by-hop
 * fields removed (an upgrade keeps `Upgrade` and gets `connection: upgrade`), a listed or
 * repeated Content-Length sent once, `x-forwarded-for` sent as one list ending with
 * `clientAddr`, and `extra` (pre-encoded `name: value\r\n` lines, ASCII) added last.
 *
 * `callerLine` is for the callee's inbound: when not undefined, the identity fields a caller
 * could forge (`IDENTITY_FIELDS` of `head.ts`, the method-override fields among them) are
 * dropped, and the line itself (`x-skein-caller: <verified id>\r\n`, or null without a
 * verified caller) is added. The usual request carries none of these fields: it costs one
 * flag test.
 */
export function writeForwardedRequestHead(
  w: ByteWriter,
  head: RequestHead,
  clientAddr: string | null,
  extra?: string,
  callerLine?: string | null,
): void {
  let xff: string | null = null;
  if (head.forwardingFields === true || head.contentLengthListed === true) {
    xff = dropRewrittenFields(head, {
      identity: callerLine !== undefined,
      forwardedFor: clientAddr !== null,
    });
  }
  if (head.versionMinor === 1 && head.targetRewritten !== true) {
    w.bytes(head.raw, head.start, head.firstLineEnd);
  } else {
    w.latin1(`${head.method} ${head.target} HTTP/1.1\r\n`);
  }
  _copyEndToEnd(w, head);
  if (head.contentLengthListed === true) _contentLengthLine(w, head);
  if (head.upgrade) w.latin1("connection: upgrade\r\n");
  if (clientAddr !== null) {
    // Written in pieces: a template string would be flattened (allocated) just to be copied.
    w.bytes(X_FORWARDED_FOR);
    if (xff !== null) {
      w.latin1(xff);
      w.bytes(LIST_SEPARATOR);
    }
    w.latin1(clientAddr);
    w.bytes(CRLF);
  }
  if (extra !== undefined && extra !== "") w.latin1(extra);
  if (callerLine != null) w.latin1(callerLine);
  w.bytes(CRLF);
}

/**
 * Writes the head to send back to the client. When nothing needs changing the bytes are
 * copied verbatim; `close` adds `connection: close` because the proxy will close afterwards.
 */
export function writeForwardedResponseHead(
  w: ByteWriter,
  head: ResponseHead,
  close: boolean,
): void {
  if (head.contentLengthListed === true) {
    dropRewrittenFields(head, { identity: false, forwardedFor: false });
  }
  if (!head.hasHopByHop && !close && head.versionMinor === 1) {
    w.bytes(head.raw, head.start, head.end);
    return;
  }
  if (head.versionMinor === 1) {
    w.bytes(head.raw, head.start, head.firstLineEnd);
  } else {
    w.latin1(`HTTP/1.1 ${head.status} ${head.reason}\r\n`);
  }
  _copyEndToEnd(w, head);
  if (head.contentLengthListed === true) _contentLengthLine(w, head);
  if (head.status === 101 && head.upgrade) w.latin1("connection: upgrade\r\n");
  else if (close) w.latin1("connection: close\r\n");
  w.bytes(CRLF);
}

const REASONS: Record<number, string> = {
  100: "Continue",
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  408: "Request Timeout",
  413: "Content Too Large",
  417: "Expectation Failed",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

/** The standard reason phrase for a status, or "Unknown". */
export function reasonPhrase(status: number): string {
  return REASONS[status] ?? "Unknown";
}

/** What a proxy-generated response says. */
export interface ProxyResponseInit {
  /** Status code. */
  status: number;
  /** The proxy's node name, sent as `x-skein-proxy` and in `via`. */
  node: string;
  /** Short machine-readable cause, sent as `x-skein-error` (e.g. `no_endpoint`). */
  cause: string;
  /** Human-readable explanation, the body. */
  message: string;
  /** Whether the proxy closes the connection after this response. */
  close: boolean;
  /** Omit the body (answering HEAD). @default false */
  headOnly?: boolean;
  /** Extra pre-encoded header lines (`name: value\r\n` each, ASCII). */
  headers?: string;
}

/** Serializes a response the proxy generates itself, e.g. 503 when no endpoint is available. */
export function proxyResponseBytes(init: ProxyResponseInit): Uint8Array {
  const body = `${init.message}\n`;
  const w = new ByteWriter(256 + body.length);
  w.latin1(
    `HTTP/1.1 ${init.status} ${reasonPhrase(init.status)}\r\n` +
      `content-type: text/plain; charset=utf-8\r\n` +
      `content-length: ${new TextEncoder().encode(body).length}\r\n` +
      `x-skein-proxy: ${init.node}\r\n` +
      `x-skein-error: ${init.cause}\r\n` +
      `via: 1.1 ${init.node}\r\n` +
      (init.headers ?? "") +
      (init.close ? "connection: close\r\n" : "") +
      "\r\n",
  );
  if (!init.headOnly) w.bytes(new TextEncoder().encode(body));
  return w.buf.slice(0, w.len);
}

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);

/** Whether a method is idempotent (RFC 9110 section 9.2.2), so a retry after sending is safe. */
export function isIdempotent(method: string): boolean {
  return IDEMPOTENT.has(method);
}

/** How a response body is delimited (RFC 9112 section 6.3). */
export type ResponseBodyKind = "none" | "length" | "chunked" | "close";

/** Determines how the body of `res`, answering a request with `method`, is delimited. */
export function responseBodyKind(method: string, res: ResponseHead): ResponseBodyKind {
  if (method === "HEAD" || res.status < 200 || res.status === 204 || res.status === 304) {
    return "none";
  }
  if (res.chunked) return "chunked";
  if (res.otherTransferCoding) return "close";
  if (res.contentLength >= 0) return res.contentLength === 0 ? "none" : "length";
  return "close";
}
