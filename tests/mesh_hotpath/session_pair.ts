/**
 * A forwarder's client connection without the forwarder: a {@linkcode Session} over the
 * server end of a loopback pair, with the shared state a forwarder would give it, so the
 * request path's layers can be tested one at a time.
 */
import { nullLogger } from "../../common/log.ts";
import { DEFAULT_HEAD_LIMITS, parseRequestHead } from "../../mesh/http1/mod.ts";
import { CoarseTimers } from "../../mesh/forward/coarse_timers.ts";
import {
  type ForwarderCtx,
  type ForwarderOptions,
  newForwarderStats,
  withDefaults,
} from "../../mesh/forward/context.ts";
import { IdleSweeper } from "../../mesh/forward/idle.ts";
import { OpenUpgrades } from "../../mesh/forward/open_upgrades.ts";
import { ConnectionPool } from "../../mesh/forward/pool.ts";
import { Session } from "../../mesh/forward/session.ts";
import { ProxyError } from "../../mesh/forward/types.ts";

/** A session and the client connected to it. */
export interface SessionPair {
  /** The session (server end). */
  s: Session;
  /** The client end. */
  client: Deno.Conn;
  /** Closes both ends and the shared state. */
  close(): void;
}

/** Opens a loopback pair and wraps its server end in a session with default options. */
export async function sessionPair(opts: Partial<ForwarderOptions> = {}): Promise<SessionPair> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [client, server] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: (l.addr as Deno.NetAddr).port }),
    l.accept(),
  ]);
  l.close();
  const upstreams = new ConnectionPool();
  const timers = new CoarseTimers();
  const upgraded = new IdleSweeper({ idleMs: 0 });
  const f: ForwarderCtx = {
    opts: withDefaults({
      node: "test-node",
      listener: { name: "test", protocol: "http" },
      router: { route: () => new ProxyError(404, "no_route", "no route") },
      logger: nullLogger,
      upgradedIdleMs: 0,
      ...opts,
    }),
    node: "test-node",
    upstreams,
    draining: false,
    tick: 0,
    timers,
    upgraded,
    rechecked: new OpenUpgrades(nullLogger),
    stats: newForwarderStats(),
  };
  const s = new Session(f, server);
  return {
    s,
    client,
    close() {
      s.abort();
      try {
        client.close();
      } catch {
        // Closed by the test already.
      }
      timers.close();
      upgraded.close();
      upstreams.close();
    },
  };
}

/** Puts `raw` (a request head, maybe with body bytes) into the session's buffer and parses it. */
export function feedRequest(s: Session, raw: string): void {
  const bytes = new TextEncoder().encode(raw);
  s.buf.set(bytes, 0);
  s.len = bytes.length;
  const end = raw.indexOf("\r\n\r\n") + 4;
  const head = parseRequestHead(s.buf, 0, end, DEFAULT_HEAD_LIMITS);
  s.pos = end;
  s.x.begin(head);
}

/** Reads from `conn` until `done(text)` says the text is complete (or the peer closes). */
export async function readUntil(conn: Deno.Conn, done: (text: string) => boolean): Promise<string> {
  const buf = new Uint8Array(64 * 1024);
  let text = "";
  while (!done(text)) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
  return text;
}
