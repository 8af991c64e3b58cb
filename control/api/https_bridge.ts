/**
 * The bridge between `node:https` and the Web handler: one node request becomes a `Request`,
 * the handler's `Response` is written back.
 *
 * The bridge is on every API request's path, so it avoids what cost most there: small bodies
 * reach the handler as bytes (no Web stream), headers go to `Request` as pairs (a `Headers`
 * init is copied through the slow generic path), JSON answers are read whole and written with a
 * length, and only GET/HEAD requests get an abort signal (blocking queries are what need one).
 * @module
 */
import type http from "node:http";
import type { Logger } from "../../common/log.ts";
import type { SpiffeId } from "../../common/tls/mod.ts";

/**
 * Request bodies that declare a Content-Length up to this size are read whole before the
 * handler runs and handed over as bytes: cheaper than a Web stream for the small JSON bodies of
 * writes. Larger or chunked bodies are streamed, so the handler's size limit (413) still stops
 * them early.
 */
export const BUFFERED_BODY_MAX_BYTES = 16 * 1024;

/** Who is calling, as the TLS layer established it. */
export interface ApiConnInfo {
  /** The verified SPIFFE id of the client certificate, or null when none was presented. */
  readonly peer: SpiffeId | null;
  /** The client's address. */
  readonly remoteAddr: { readonly hostname: string; readonly port: number };
}

/** The request handler of `serveApiHttps`. */
export type ApiHandler = (req: Request, info: ApiConnInfo) => Response | Promise<Response>;

/** The part of a connection's state the bridge reads and keeps. */
export interface BridgeConn {
  /** The same facts as handed to every handler call (one object per connection). */
  readonly info: ApiConnInfo;
  /** Requests on this connection still receiving their bodies. */
  bodiesPending: number;
  /** Earliest deadline of a pending body, ms (performance.now()); Infinity when none. */
  bodyDeadline: number;
}

const _NO_BODY_METHODS = new Set(["GET", "HEAD"]);
const _HOST = /^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;

/** Answers a request that could not be turned into a Web Request, and closes. */
function _malformed(res: http.ServerResponse, e: unknown): void {
  res.writeHead(400, { "content-type": "application/json", connection: "close" });
  res.end(JSON.stringify({
    error: {
      code: "invalid_request",
      message: `malformed request: ${(e as Error).message}`,
      details: {},
    },
  }));
}

/**
 * Bridges one node request to the Web handler and its Response back. Small bodies with a
 * declared length are collected first ({@linkcode BUFFERED_BODY_MAX_BYTES}); larger ones stream.
 */
export function serveRequest(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  c: BridgeConn,
  handler: ApiHandler,
  bodyMs: number,
  closing: () => boolean,
  log: Logger,
): void {
  const method = req.method ?? "GET";
  const te = req.headers["transfer-encoding"];
  const cl = req.headers["content-length"];
  const hasBody = te !== undefined || (cl !== undefined && cl !== "0");
  if (!hasBody || _NO_BODY_METHODS.has(method)) {
    req.resume();
    _dispatchOrCut(req, res, c, handler, method, null, true, closing, log);
    return;
  }
  c.bodiesPending++;
  c.bodyDeadline = Math.min(c.bodyDeadline, performance.now() + bodyMs);
  let pending = true;
  const bodyDone = () => {
    if (!pending) return;
    pending = false;
    if (--c.bodiesPending === 0) c.bodyDeadline = Infinity;
  };
  res.once("close", bodyDone);
  const declared = te === undefined && cl !== undefined && /^\d{1,9}$/.test(cl) ? Number(cl) : -1;
  if (declared < 0 || declared > BUFFERED_BODY_MAX_BYTES) {
    req.once("end", bodyDone);
    _dispatchOrCut(req, res, c, handler, method, _bodyStream(req), false, closing, log);
    return;
  }
  // The server never delivers more than the declared length, so this buffer is bounded.
  const chunks: Uint8Array[] = [];
  let total = 0;
  req.on("data", (chunk: Uint8Array) => {
    chunks.push(chunk);
    total += chunk.byteLength;
  });
  req.once("end", () => {
    bodyDone();
    let body: Uint8Array<ArrayBuffer>;
    if (chunks.length === 1 && chunks[0]!.byteLength === chunks[0]!.buffer.byteLength) {
      body = chunks[0] as Uint8Array<ArrayBuffer>;
    } else {
      body = new Uint8Array(total);
      let at = 0;
      for (const ch of chunks) {
        body.set(ch, at);
        at += ch.byteLength;
      }
    }
    _dispatchOrCut(req, res, c, handler, method, body, true, closing, log);
  });
}

/** {@linkcode _dispatch}, cutting the connection if writing the answer itself fails. */
function _dispatchOrCut(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  c: BridgeConn,
  handler: ApiHandler,
  method: string,
  body: ReadableStream<Uint8Array> | Uint8Array<ArrayBuffer> | null,
  bodyComplete: boolean,
  closing: () => boolean,
  log: Logger,
): void {
  _dispatch(req, res, c, handler, method, body, bodyComplete, closing, log).catch((e) => {
    // E.g. a header value node refuses: nothing sensible can be sent any more.
    log.error("api response failed", { method, err: e as Error });
    res.destroy();
  });
}

/** Builds the Web Request, runs the handler and writes its answer. */
async function _dispatch(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  c: BridgeConn,
  handler: ApiHandler,
  method: string,
  body: ReadableStream<Uint8Array> | Uint8Array<ArrayBuffer> | null,
  bodyComplete: boolean,
  closing: () => boolean,
  log: Logger,
): Promise<void> {
  if (res.destroyed) return;
  let request: Request;
  try {
    const url = req.url ?? "/";
    if (!url.startsWith("/")) throw new TypeError(`request target ${url.slice(0, 64)}`);
    const host = req.headers.host;
    const base = host !== undefined && _HOST.test(host) ? `https://${host}` : "https://localhost";
    // Header pairs, not a Headers object: Request copies a Headers init through the generic
    // iterable conversion, which cost three times the rest of the construction.
    const raw = req.rawHeaders;
    const headers: [string, string][] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) headers.push([raw[i]!, raw[i + 1]!]);
    const init: RequestInit & { duplex?: "half" } = { method, headers, body };
    // Needed for a streamed request body.
    if (body instanceof ReadableStream) init.duplex = "half";
    if (_NO_BODY_METHODS.has(method)) {
      // The handler's signal follows the client: a blocking query stops waiting when it
      // leaves. Writes have nothing to stop once received (their commit cannot be taken back),
      // so they go without the controller.
      const ac = new AbortController();
      res.once("close", () => {
        if (!res.writableFinished) ac.abort();
      });
      init.signal = ac.signal;
    }
    request = new Request(base + url, init);
  } catch (e) {
    _malformed(res, e);
    return;
  }
  let response: Response;
  try {
    response = await handler(request, c.info);
  } catch (e) {
    log.error("api handler failed", { method, err: e as Error });
    response = Response.json({
      error: { code: "internal", message: "internal error; see the control node log", details: {} },
    }, { status: 500 });
  }
  if (res.destroyed) {
    await response.body?.cancel().catch(() => {});
    return;
  }
  // A body the handler did not read (e.g. 413) is still on the wire: close after answering.
  const incomplete = !bodyComplete && !req.complete;
  await _writeResponse(res, response, incomplete || closing());
}

/** A request body as a Web stream with backpressure onto the socket. */
function _bodyStream(req: http.IncomingMessage): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(ctrl) {
      req.on("data", (chunk: Uint8Array) => {
        ctrl.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if ((ctrl.desiredSize ?? 0) <= 0) req.pause();
      });
      req.once("end", () => {
        try {
          ctrl.close();
        } catch { /* already cancelled */ }
      });
      req.once("error", (e) => {
        try {
          ctrl.error(e);
        } catch { /* already cancelled */ }
      });
      req.pause();
    },
    pull() {
      req.resume();
    },
    cancel() {
      // The handler refused the body (e.g. 413): stop reading; the connection closes after the
      // response, since the rest of the body is still on the wire.
      req.pause();
    },
  }, { highWaterMark: 4 });
}

/** Content types whose bodies are whole values, collected in one piece before writing. */
const _WHOLE_BODY = /^application\/(?:[a-z0-9.+-]+\+)?json\b/i;

/** Writes a Web Response to a node response, streaming the body with backpressure. */
async function _writeResponse(
  res: http.ServerResponse,
  response: Response,
  closeAfter: boolean,
): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of response.headers) {
    if (k === "set-cookie") {
      const prev = headers[k];
      headers[k] = prev === undefined ? [v] : [...(Array.isArray(prev) ? prev : [prev]), v];
    } else headers[k] = v;
  }
  if (closeAfter) {
    headers["connection"] = "close";
    res.once("finish", () => res.socket?.end());
  }
  const body = response.body;
  if (!body) {
    res.writeHead(response.status, headers);
    res.end();
    return;
  }
  if (_WHOLE_BODY.test(response.headers.get("content-type") ?? "")) {
    // JSON answers are complete values (the API's only kind but metrics): one read of the
    // whole body and one write with a length, no stream reader.
    let bytes: Uint8Array;
    try {
      bytes = await response.bytes();
    } catch {
      res.destroy();
      return;
    }
    if (res.destroyed) return;
    headers["content-length"] = String(bytes.byteLength);
    res.writeHead(response.status, headers);
    res.end(bytes);
    return;
  }
  const reader = body.getReader();
  const onClose = () => reader.cancel().catch(() => {});
  res.once("close", onClose);
  try {
    const first = await reader.read();
    if (first.done) {
      res.writeHead(response.status, headers);
      res.end();
      return;
    }
    const second = await reader.read();
    if (second.done) {
      // One chunk: one write with a length, no chunking.
      headers["content-length"] = String(first.value.byteLength);
      res.writeHead(response.status, headers);
      res.end(first.value);
      return;
    }
    res.writeHead(response.status, headers);
    let chunk: ReadableStreamReadResult<Uint8Array> = second;
    res.write(first.value);
    while (!chunk.done) {
      if (!res.write(chunk.value)) {
        await new Promise<void>((r) => {
          res.once("drain", r);
          res.once("close", r);
        });
        if (res.destroyed) return;
      }
      chunk = await reader.read();
    }
    res.end();
  } catch {
    // The body stream failed or the client left: nothing sensible can be sent any more.
    res.destroy();
  } finally {
    res.off("close", onClose);
  }
}
