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
import type { Upstreams, UpstreamSession, UpstreamStream } from "./upstream.ts";

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
  /** A session with no open stream for this long is closed by {@linkcode H2ClientSessions.sweep}, in ms. */
  idleMs: number;
  /** Millisecond clock. @default performance.now */
  now?: () => number;
}

interface _Entry {
  ready: Promise<http2.ClientHttp2Session>;
  /** What calls use: the session's `request`, counting the streams open on it. */
  handle: Promise<UpstreamSession>;
  born: number;
}

/** How much a session is used, for the idle sweep. */
interface _Use {
  streams: number;
  last: number;
}

/** The sessions of one calling identity, by endpoint. */
export class H2ClientSessions implements Upstreams {
  readonly #o: H2ClientSessionsOptions;
  readonly #now: () => number;
  readonly #map = new Map<string, _Entry>();
  readonly #open = new Map<http2.ClientHttp2Session, _Use>();
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
    return this.#entry(ep).handle;
  }

  #entry(ep: Endpoint): _Entry {
    if (this.#closed) {
      const no = Promise.reject(new Error("h2 sessions closed"));
      no.catch(() => {});
      return { ready: no, handle: no, born: 0 };
    }
    const key = `${ep.key} ${ep.identity ?? ""}`;
    const e = this.#map.get(key);
    if (e !== undefined && this.#now() - e.born < this.#o.maxAgeMs) return e;
    if (e !== undefined) {
      this.#map.delete(key);
      // Retired: open calls finish on it, new ones go to a fresh session.
      e.ready.then((s) => s.close(), () => {});
    }
    const ready = this.#dial(ep, key);
    const handle = ready.then((s) => this.#handle(s));
    const entry = { ready, handle, born: this.#now() };
    this.#map.set(key, entry);
    handle.catch(() => {
      if (this.#map.get(key) === entry) this.#map.delete(key);
    });
    return entry;
  }

  /** A session's `request`, counting its open streams for the idle sweep. */
  #handle(s: http2.ClientHttp2Session): UpstreamSession {
    const use = this.#open.get(s) ?? { streams: 0, last: this.#now() };
    const now = this.#now;
    return {
      request(h, o) {
        const st = s.request(h as http2.OutgoingHttpHeaders, o);
        use.streams++;
        st.once("close", () => {
          use.streams--;
          use.last = now();
        });
        // A node:http2 client stream is what UpstreamStream describes.
        return st as unknown as UpstreamStream;
      },
    };
  }

  /** Closes sessions that carried no stream for the idle time (call about once a second). */
  sweep(): void {
    const now = this.#now();
    for (const [s, use] of this.#open) {
      if (use.streams === 0 && now - use.last >= this.#o.idleMs) s.close();
    }
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
    this.#open.set(s, { streams: 0, last: this.#now() });
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
    for (const s of this.#open.keys()) s.close();
    this.#map.clear();
  }

  /** Ends every session now. */
  destroy(): void {
    this.#closed = true;
    for (const s of this.#open.keys()) s.destroy();
    this.#open.clear();
    this.#map.clear();
  }
}
