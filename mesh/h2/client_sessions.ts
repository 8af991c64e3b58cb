/**
 * HTTP/2 client sessions to endpoints, one per endpoint (per caller identity), shared by every
 * call to it: the callee proxies over mTLS (ALPN `h2`), or the local app over h2c. A session
 * past its age is retired (new calls dial a fresh one, open calls finish on the old), as the
 * callee cuts it when the certificate it was opened with expires.
 * @module
 */
import { turnNow } from "../forward/batch_clock.ts";
import type { Endpoint } from "../forward/mod.ts";
import { DEFAULT_HEAD_LIMITS } from "../http1/mod.ts";
import type { Upstreams, UpstreamSession, UpstreamStream } from "./upstream.ts";
import { H2Connection } from "./wire/connection.ts";
import type { WireHeaders } from "./wire/stream.ts";
import { runOver } from "./wire/transport.ts";

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
  /**
   * Millisecond clock, asked at every call and stream end. @default the batch clock (one
   * reading per run of microtasks: a session's age and idle time need no finer one)
   */
  now?: () => number;
  /** Largest response header list accepted, in bytes. @default the HTTP/1 head limit */
  maxHeaderListBytes?: number;
}

interface _Entry {
  ready: Promise<H2Connection>;
  /** What calls use: the session's `request`, counting the streams open on it. */
  handle: Promise<UpstreamSession>;
  /** What `handle` resolved to, once it did. */
  session: UpstreamSession | null;
  born: number;
}

/**
 * Session keys by endpoint (long-lived objects): a key built per call is a new string to
 * allocate and hash at every lookup. Checked against the endpoint's fields, as the HTTP/1
 * pool's keys are, in case one changes in place.
 */
const _keys = new WeakMap<Endpoint, { key: string; identity: string | undefined; s: string }>();

/** The session key of `ep` (its address and the identity it must present). */
function _keyOf(ep: Endpoint): string {
  let k = _keys.get(ep);
  if (k === undefined || k.key !== ep.key || k.identity !== ep.identity) {
    k = { key: ep.key, identity: ep.identity, s: `${ep.key} ${ep.identity ?? ""}` };
    _keys.set(ep, k);
  }
  return k.s;
}

/** The sessions of one calling identity, by endpoint. */
export class H2ClientSessions implements Upstreams {
  readonly #o: H2ClientSessionsOptions;
  readonly #now: () => number;
  readonly #map = new Map<string, _Entry>();
  readonly #open = new Set<H2Connection>();
  #closed = false;

  /** Creates an empty set of sessions. */
  constructor(o: H2ClientSessionsOptions) {
    this.#o = o;
    this.#now = o.now ?? turnNow;
  }

  /** Sessions open now. */
  get size(): number {
    return this.#open.size;
  }

  /** The session to `ep`, dialled when there is none (rejects when the dial fails). */
  get(ep: Endpoint): Promise<UpstreamSession> {
    return this.#entry(ep).handle;
  }

  /** See {@linkcode Upstreams.ready}: the open session to `ep` young enough for new calls. */
  ready(ep: Endpoint): UpstreamSession | null {
    if (this.#closed) return null;
    const e = this.#map.get(_keyOf(ep));
    if (e === undefined || this.#now() - e.born >= this.#o.maxAgeMs) return null;
    return e.session;
  }

  #entry(ep: Endpoint): _Entry {
    if (this.#closed) {
      const no = Promise.reject(new Error("h2 sessions closed"));
      no.catch(() => {});
      return { ready: no, handle: no, session: null, born: 0 };
    }
    const key = _keyOf(ep);
    const e = this.#map.get(key);
    if (e !== undefined && this.#now() - e.born < this.#o.maxAgeMs) return e;
    if (e !== undefined) {
      this.#map.delete(key);
      // Retired: open calls finish on it, new ones go to a fresh session.
      e.ready.then((s) => s.close(), () => {});
    }
    const ready = this.#dial(ep, key);
    const handle = ready.then((s) => entry.session = this.#handle(s));
    const entry: _Entry = { ready, handle, session: null, born: this.#now() };
    this.#map.set(key, entry);
    handle.catch(() => {
      if (this.#map.get(key) === entry) this.#map.delete(key);
    });
    return entry;
  }

  /** A session's `request`, counting its open streams for the idle sweep. */
  #handle(s: H2Connection): UpstreamSession {
    return {
      request(h, o) {
        // The wire's client streams are what UpstreamStream describes.
        return s.request(h as WireHeaders, o) as UpstreamStream;
      },
    };
  }

  /** Closes sessions that carried no stream for the idle time (call about once a second). */
  sweep(): void {
    const now = this.#now();
    for (const s of this.#open) {
      if (s.activeStreams === 0 && now - s.lastActive >= this.#o.idleMs) s.close();
    }
  }

  async #dial(ep: Endpoint, key: string): Promise<H2Connection> {
    const conn = await this.#o.dial(ep);
    if (this.#closed) {
      conn.close();
      throw new Error("h2 sessions closed");
    }
    const s = new H2Connection({
      role: "client",
      maxConcurrentStreams: MAX_CONCURRENT_STREAMS,
      maxHeaderListBytes: this.#o.maxHeaderListBytes ?? DEFAULT_HEAD_LIMITS.maxHeadBytes,
      now: this.#now,
    });
    const forget = () => {
      const cur = this.#map.get(key);
      if (cur !== undefined) {
        cur.ready.then((x) => {
          if (x === s && this.#map.get(key) === cur) this.#map.delete(key);
        }, () => {});
      }
    };
    s.on("close", () => {
      this.#open.delete(s);
      forget();
    });
    s.on("goaway", forget);
    this.#open.add(s);
    runOver(s, conn);
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
