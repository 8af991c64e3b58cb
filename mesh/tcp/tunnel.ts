/**
 * Opaque TCP between proxies over the one `inbound` port: the calling proxy opens a connection
 * to the remote inbound listener and sends an HTTP/1.1 `Upgrade: skein-tcp` request naming the
 * service; the remote forwarder passes the upgrade to a local bridge, which answers
 * `101 Switching Protocols`, connects to the app and splices bytes both ways. After the 101
 * the connection carries the TCP stream unchanged, end to end.
 * @module
 */
import type { Logger } from "../../common/log.ts";
import { closeQuietly, type Endpoint, noDelay, pipe, writeAll } from "../forward/mod.ts";
import { DESTINATION_HEADER } from "../http1/mesh_headers.ts";
import { connectMtls, type MeshTls } from "../tls/mod.ts";
import { DEFAULT_TCP_IDLE_TIMEOUT_MS, IdleSweeper } from "../forward/idle.ts";

/** Upgrade token of opaque TCP tunnelled through an inbound listener. */
export const TCP_TUNNEL_UPGRADE = "skein-tcp";
/** Largest tunnel handshake head read, in bytes. */
export const MAX_TUNNEL_HEAD_BYTES = 8 * 1024;
/** Copy buffer per direction of a bridged connection, in bytes. */
export const TUNNEL_BUFFER_BYTES = 16 * 1024;
/** Most tunnels bridged at once on one proxy. */
export const MAX_TUNNELS = 10_000;

const _enc = new TextEncoder();
const _dec = new TextDecoder();

/** Why a tunnel could not be opened. */
export class TunnelError extends Error {
  override readonly name = "TunnelError";
}

/**
 * Reads one head ending in CRLFCRLF from `conn`, a byte at a time so no byte of the stream
 * that follows is consumed. Only used once per tunnel, never per request.
 */
async function _readHead(conn: Deno.Conn): Promise<string> {
  const buf = new Uint8Array(MAX_TUNNEL_HEAD_BYTES);
  let n = 0;
  while (n < buf.length) {
    const r = await conn.read(buf.subarray(n, n + 1));
    if (r === null) throw new TunnelError("connection closed during the tunnel handshake");
    n += r;
    if (
      n >= 4 && buf[n - 1] === 10 && buf[n - 2] === 13 && buf[n - 3] === 10 && buf[n - 4] === 13
    ) {
      return _dec.decode(buf.subarray(0, n));
    }
  }
  throw new TunnelError(`tunnel handshake head over ${MAX_TUNNEL_HEAD_BYTES} bytes`);
}

/**
 * Opens a tunnel to `service` through the inbound listener at `ep` (the calling side); over
 * mTLS when `tls` is given, the server having to be `ep.identity`, presenting the certificate
 * of the local service `caller` (default: the first).
 */
export async function connectTunnel(
  ep: Endpoint,
  service: string,
  tls?: MeshTls,
  caller?: string,
): Promise<Deno.Conn> {
  const conn = tls === undefined
    ? await Deno.connect({ hostname: ep.hostname, port: ep.port })
    : await connectMtls(tls, ep, undefined, caller === undefined ? {} : { caller });
  try {
    noDelay(conn);
    await writeAll(
      conn,
      _enc.encode(
        `GET / HTTP/1.1\r\nhost: ${service}\r\n${DESTINATION_HEADER}: ${service}\r\n` +
          `connection: upgrade\r\nupgrade: ${TCP_TUNNEL_UPGRADE}\r\n\r\n`,
      ),
    );
    const head = await _readHead(conn);
    const status = Number(head.slice(9, 12));
    if (status !== 101) {
      throw new TunnelError(`tunnel to ${service} at ${ep.key} refused with ${status}`);
    }
    return conn;
  } catch (e) {
    closeQuietly(conn);
    throw e;
  }
}

/**
 * The receiving side: one loopback listener per local service, which the inbound forwarder
 * sends that service's authorized tunnel upgrades to. The listener, not the upgrade's head,
 * decides the app: the head comes from the caller, and re-reading a destination from it could
 * pick another service than the one the router authorized.
 */
export class TunnelBridge {
  /** Service → its listener. */
  readonly #listeners = new Map<string, Deno.Listener>();
  /** Service → the app port its listener bridges to. */
  readonly #apps = new Map<string, number>();
  readonly #log: Logger;
  readonly #active = new Set<Deno.Conn>();
  /** Accept loops still running; one ends (and leaves) when its listener is closed. */
  readonly #served = new Set<Promise<void>>();
  readonly #idle: IdleSweeper;
  #closed = false;
  /** Tunnels closed by the idle timeout. */
  idleClosed = 0;

  /**
   * Listens on 127.0.0.1 (a free port each) for tunnels to the local apps in `ports`. A tunnel
   * with no byte either way for `idleTimeoutMs` (0 = never) is closed.
   */
  constructor(
    ports: ReadonlyMap<string, number>,
    log: Logger,
    opts: { idleTimeoutMs?: number; now?: () => number } = {},
  ) {
    this.#log = log;
    this.#idle = new IdleSweeper({
      idleMs: opts.idleTimeoutMs ?? DEFAULT_TCP_IDLE_TIMEOUT_MS,
      ...(opts.now ? { now: opts.now } : {}),
    });
    try {
      for (const [service, appPort] of ports) this.#open(service, appPort);
    } catch (e) {
      for (const l of this.#listeners.values()) l.close();
      throw e;
    }
  }

  #open(service: string, appPort: number): void {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#listeners.set(service, l);
    this.#apps.set(service, appPort);
    const served: Promise<void> = this.#accept(l, appPort).finally(() =>
      this.#served.delete(served)
    );
    this.#served.add(served);
  }

  /**
   * The local apps after a configuration reload: a service gone (or moved to another port)
   * stops accepting new tunnels, and its open tunnels are kept; a new one gets a listener.
   */
  setApps(ports: ReadonlyMap<string, number>): void {
    for (const [service, l] of [...this.#listeners]) {
      if (ports.get(service) === this.#apps.get(service)) continue;
      this.#listeners.delete(service);
      this.#apps.delete(service);
      try {
        l.close();
      } catch {
        // Already closed.
      }
    }
    for (const [service, appPort] of ports) {
      if (!this.#listeners.has(service)) this.#open(service, appPort);
    }
  }

  /** The bridge port leading to `service`'s app, or null when this proxy does not front it. */
  portFor(service: string): number | null {
    const l = this.#listeners.get(service);
    return l === undefined ? null : (l.addr as Deno.NetAddr).port;
  }

  async #accept(listener: Deno.Listener, appPort: number): Promise<void> {
    while (!this.#closed) {
      let c: Deno.Conn;
      try {
        c = await listener.accept();
      } catch {
        return;
      }
      if (this.#active.size >= MAX_TUNNELS) {
        closeQuietly(c);
        continue;
      }
      this.#active.add(c);
      this.#bridge(c, appPort).finally(() => this.#active.delete(c));
    }
  }

  async #bridge(c: Deno.Conn, port: number): Promise<void> {
    let app: Deno.Conn | null = null;
    try {
      // The upgrade request's head is consumed, not read for where to go.
      await _readHead(c);
      try {
        app = await Deno.connect({ hostname: "127.0.0.1", port });
      } catch {
        await writeAll(c, _enc.encode("HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n"));
        return;
      }
      noDelay(app);
      this.#active.add(app);
      await writeAll(
        c,
        _enc.encode(
          `HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: ${TCP_TUNNEL_UPGRADE}\r\n\r\n`,
        ),
      );
      const a = app;
      const idle = this.#idle.watch(() => {
        this.idleClosed++;
        closeQuietly(c);
        closeQuietly(a);
      });
      try {
        await Promise.all([
          pipe(c, a, new Uint8Array(TUNNEL_BUFFER_BYTES), idle.touch).then((r) => {
            if (r.failed) closeQuietly(a);
          }),
          pipe(a, c, new Uint8Array(TUNNEL_BUFFER_BYTES), idle.touch).then((r) => {
            if (r.failed) closeQuietly(c);
          }),
        ]);
      } finally {
        idle.stop();
      }
    } catch (e) {
      this.#log.debug("tcp tunnel ended", { err: e as Error });
    } finally {
      closeQuietly(c);
      if (app) {
        closeQuietly(app);
        this.#active.delete(app);
      }
    }
  }

  /** Accept loops running: one per listener, plus closed ones not yet ended (tests). */
  get acceptLoops(): number {
    return this.#served.size;
  }

  /** Ends the tunnels idle past the timeout now (tests; a timer does it otherwise). */
  sweepIdle(): void {
    this.#idle.sweep();
  }

  /** Stops accepting and closes every bridged connection. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#idle.close();
    for (const l of this.#listeners.values()) {
      try {
        l.close();
      } catch {
        // Already closed.
      }
    }
    for (const c of this.#active) closeQuietly(c);
    await Promise.all([...this.#served]);
  }
}
