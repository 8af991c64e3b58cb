/**
 * HTTP/2 client sessions to endpoints, one per endpoint (per caller identity), shared by every
 * call to it: the callee proxies over mTLS (ALPN `h2`), or the local app over h2c. A session
 * past its age is retired (new calls dial a fresh one, open calls finish on the old), as the
 * callee cuts it when the certificate it was opened with expires.
 * @module
 */
import http2 from "node:http2";
import type { Endpoint } from "../forward/mod.ts";
import { duplexOf } from "./duplex.ts";
import type { Upstreams, UpstreamSession } from "./upstream.ts";

/** Opens the byte stream a session to `ep` runs on. */
export type H2Dial = (ep: Endpoint) => Promise<Deno.Conn>;

/** Most concurrent streams this side offers per session it opens or accepts. */
export const MAX_CONCURRENT_STREAMS = 256;

/** Options of {@linkcode H2ClientSessions}. */
export interface H2ClientSessionsOptions {
  /** Opens the connection to an endpoint (TCP for h2c, mTLS with ALPN h2 to a proxy). */
  dial: H2Dial;
  /** A session older than this takes no new calls, in ms. */
  maxAgeMs: number;
  /** A session with no open stream for this long is closed, in ms. */
  idleMs: number;
  /** Millisecond clock. @default performance.now */
  now?: () => number;
}

interface _Entry {
  ready: Promise<http2.ClientHttp2Session>;
  born: number;
}

/** The sessions of one calling identity, by endpoint. */
export class H2ClientSessions implements Upstreams {
  readonly #o: H2ClientSessionsOptions;
  readonly #now: () => number;
  readonly #map = new Map<string, _Entry>();
  readonly #open = new Set<http2.ClientHttp2Session>();
  #closed = false;

  /** Creates an empty set of sessions. */
  constructor(o: H2ClientSessionsOptions) {
    this.#o = o;
    this.#now = o.now ?? (() => performance.now());
  }

  /** Sessions open now. */
  get size(): number {
    return this.#open.size;
  }

  /** The session to `ep`, dialled when there is none (rejects when the dial fails). */
  get(ep: Endpoint): Promise<UpstreamSession> {
    // A node:http2 client session is what UpstreamSession describes.
    return this.session(ep) as unknown as Promise<UpstreamSession>;
  }

  /** The `node:http2` session to `ep`, dialled when there is none. */
  session(ep: Endpoint): Promise<http2.ClientHttp2Session> {
    if (this.#closed) return Promise.reject(new Error("h2 sessions closed"));
    const key = `${ep.key} ${ep.identity ?? ""}`;
    const e = this.#map.get(key);
    if (e !== undefined && this.#now() - e.born < this.#o.maxAgeMs) return e.ready;
    if (e !== undefined) {
      this.#map.delete(key);
      // Retired: open calls finish on it, new ones go to a fresh session.
      e.ready.then((s) => s.close(), () => {});
    }
    const ready = this.#dial(ep, key);
    this.#map.set(key, { ready, born: this.#now() });
    ready.catch(() => {
      if (this.#map.get(key)?.ready === ready) this.#map.delete(key);
    });
    return ready;
  }

  async #dial(ep: Endpoint, key: string): Promise<http2.ClientHttp2Session> {
    const conn = await this.#o.dial(ep);
    const s = http2.connect(`http://${ep.hostname}:${ep.port}`, {
      createConnection: () => duplexOf(conn) as unknown as import("node:net").Socket,
      settings: { enablePush: false, maxConcurrentStreams: MAX_CONCURRENT_STREAMS },
    });
    // An 'error' with no listener would end the process; streams see their own errors.
    s.on("error", () => {});
    const forget = () => {
      this.#open.delete(s);
      const cur = this.#map.get(key);
      if (cur !== undefined) {
        cur.ready.then((x) => {
          if (x === s && this.#map.get(key) === cur) this.#map.delete(key);
        }, () => {});
      }
    };
    s.on("close", forget);
    s.on("goaway", forget);
    s.setTimeout(this.#o.idleMs, () => s.close());
    this.#open.add(s);
    await new Promise<void>((resolve, reject) => {
      if (s.connecting === false && !s.destroyed) return resolve();
      s.once("connect", () => resolve());
      s.once("close", () => reject(new Error(`h2 session to ${ep.key} closed before it was up`)));
    });
    if (this.#closed) {
      s.destroy();
      throw new Error("h2 sessions closed");
    }
    return s;
  }

  /** Closes every session: open streams finish, no new ones start. */
  close(): void {
    this.#closed = true;
    for (const s of this.#open) s.close();
    this.#map.clear();
  }

  /** Ends every session now. */
  destroy(): void {
    this.#closed = true;
    for (const s of this.#open) s.destroy();
    this.#open.clear();
    this.#map.clear();
  }
}
