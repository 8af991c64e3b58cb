/**
 * HTTP/2 calls to a local app that speaks HTTP/1.1 (`protocol: http`): each try becomes a
 * request on `node:http`'s keep-alive client, shaped as an h2 client stream (`upstream.ts`).
 * The response's status and fields become the h2 head, chunked trailers the h2 trailers.
 * Loaded with the rest of the h2 code, only when an h2 call is made.
 * @module
 */
import { EventEmitter } from "node:events";
import http from "node:http";
import type { Endpoint } from "../forward/mod.ts";
import type { H2Headers } from "./headers.ts";
import type { Upstreams, UpstreamSession, UpstreamStream } from "./upstream.ts";

/** Most connections kept to one local app. */
export const MAX_H1_SOCKETS_PER_APP = 256;

/** The HTTP/2 error code a broken HTTP/1 exchange is reported as (INTERNAL_ERROR). */
const _INTERNAL_ERROR = 2;

/** HTTP/1.1 upstreams, pooled per endpoint by one keep-alive agent. */
export class H1Upstreams implements Upstreams {
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: MAX_H1_SOCKETS_PER_APP });

  /** The "session" to `ep`: requests on the shared agent. */
  get(ep: Endpoint): Promise<UpstreamSession> {
    return Promise.resolve({
      request: (h, o) => new H1Stream(this.#agent, ep, h, o.endStream),
    });
  }

  /** Closes the pooled connections. */
  destroy(): void {
    this.#agent.destroy();
  }
}

/** One HTTP/1.1 exchange behaving as an h2 client stream. */
class H1Stream extends EventEmitter implements UpstreamStream {
  closed = false;
  rstCode: number | undefined = undefined;
  readableEnded = false;
  readonly #req: http.ClientRequest;
  #res: http.IncomingMessage | null = null;

  constructor(agent: http.Agent, ep: Endpoint, h: H2Headers, endStream: boolean) {
    super();
    const headers: Record<string, string | string[]> = {};
    for (const name in h) {
      const v = h[name];
      if (v === undefined || name.charCodeAt(0) === 58 /* ":" */ || name === "te") continue;
      headers[name] = v;
    }
    const authority = h[":authority"];
    if (typeof authority === "string") headers["host"] = authority;
    this.#req = http.request({
      host: ep.hostname,
      port: ep.port,
      method: String(h[":method"]),
      path: String(h[":path"]),
      headers,
      agent,
    });
    this.#req.on("error", () => this.#broken());
    this.#req.on("drain", () => this.emit("drain"));
    this.#req.on("response", (res) => this.#onResponse(res));
    if (endStream) this.#req.end();
  }

  #onResponse(res: http.IncomingMessage): void {
    this.#res = res;
    res.on("error", () => this.#broken());
    res.on("aborted", () => this.#broken());
    const head: H2Headers = { ":status": String(res.statusCode ?? 502) };
    for (const name in res.headers) head[name] = res.headers[name];
    // The body flows once someone reads it, as an h2 stream's would.
    this.on("newListener", (ev: string) => {
      if (ev === "data" && res.listenerCount("data") === 0) {
        res.on("data", (c: Uint8Array) => this.emit("data", c));
      }
    });
    res.on("end", () => {
      this.readableEnded = true;
      const t = res.trailers;
      if (t !== undefined && Object.keys(t).length > 0) this.emit("trailers", { ...t });
      this.emit("end");
      this.#finish(0);
    });
    this.emit("response", head, 0);
  }

  #broken(): void {
    if (this.readableEnded) return;
    this.#finish(_INTERNAL_ERROR);
  }

  #finish(code: number): void {
    if (this.closed) return;
    this.closed = true;
    this.rstCode = code;
    this.emit("close");
  }

  /** Writes request body bytes. */
  write(chunk: Uint8Array): boolean {
    return this.#req.write(chunk);
  }

  /** Ends the request body. */
  end(): void {
    this.#req.end();
  }

  /** HTTP/1.1 requests carry no trailers here: never asked for (no `wantTrailers`). */
  sendTrailers(_trailers: H2Headers): void {}

  /** Ends the exchange now (the connection is dropped, not reused). */
  close(code = _INTERNAL_ERROR): void {
    if (this.closed) return;
    this.#req.destroy();
    this.#res?.destroy();
    this.#finish(code);
  }

  /** Stops reading the response body. */
  pause(): this {
    this.#res?.pause();
    return this;
  }

  /** Reads the response body again. */
  resume(): this {
    this.#res?.resume();
    return this;
  }
}
