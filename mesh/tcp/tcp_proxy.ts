/**
 * Opaque TCP proxying: each accepted connection is joined to an endpoint picked for it, bytes
 * are copied both ways with one fixed buffer per direction, and a FIN on one side is passed on
 * as a half-close so request/response protocols that signal "done sending" keep working.
 * @module
 */
import type { Logger } from "../../common/log.ts";
import { closeQuietly, noDelay, pipe } from "../conn/io.ts";
import {
  type Endpoint,
  type ListenerInfo,
  type Outcome,
  ProxyError,
  type RouteDecision,
} from "../forward/types.ts";
import { DEFAULT_TCP_IDLE_TIMEOUT_MS, IdleSweeper } from "../forward/idle.ts";

/** Most connections proxied at once; accepting pauses at the cap. */
export const DEFAULT_MAX_TCP_CONNECTIONS = 10_000;
/** Copy buffer per direction, in bytes. */
export const DEFAULT_TCP_BUFFER_BYTES = 16 * 1024;
/** How long a connect may take, in ms. */
export const DEFAULT_TCP_CONNECT_TIMEOUT_MS = 2_000;
/** Most endpoints tried per connection. */
const MAX_CONNECT_ATTEMPTS = 8;

/** Chooses where a TCP connection goes. */
export interface TcpRouter {
  /** Routes one accepted connection from `remote`. */
  route(listener: ListenerInfo, remote: Deno.NetAddr): RouteDecision | ProxyError;
}

/** Options for {@linkcode TcpProxy}. */
export interface TcpProxyOptions {
  /** Describes the listener to the router. */
  listener: ListenerInfo;
  /** Picks the endpoint per connection. */
  router: TcpRouter;
  /** Where events go. */
  logger: Logger;
  /** @default DEFAULT_MAX_TCP_CONNECTIONS */
  maxConnections?: number;
  /** @default DEFAULT_TCP_BUFFER_BYTES */
  bufferBytes?: number;
  /** @default DEFAULT_TCP_CONNECT_TIMEOUT_MS */
  connectTimeoutMs?: number;
  /** Opens upstream connections; injectable for TLS. @default Deno.connect */
  connect?: (ep: Endpoint) => Promise<Deno.Conn>;
  /**
   * A connection with no byte in either direction for this long is closed, in ms; 0 = never.
   * @default DEFAULT_TCP_IDLE_TIMEOUT_MS
   */
  idleTimeoutMs?: number;
  /** Clock of the idle timeout, in ms (tests). @default performance.now */
  now?: () => number;
}

/** Counters for tests and metrics. */
export interface TcpProxyStats {
  /** Connections accepted. */
  accepted: number;
  /** Connections open now. */
  active: number;
  /** Bytes copied client -> upstream. */
  bytesUp: number;
  /** Bytes copied upstream -> client. */
  bytesDown: number;
  /** Connections closed because no endpoint could be reached. */
  failed: number;
  /** Connections closed by the idle timeout. */
  idleClosed: number;
}

/** An opaque TCP proxy listener. */
export class TcpProxy {
  readonly #listener: Deno.Listener;
  readonly #opts: Required<TcpProxyOptions>;
  readonly #active = new Set<Deno.Conn>();
  readonly #stats: TcpProxyStats = {
    accepted: 0,
    active: 0,
    bytesUp: 0,
    bytesDown: 0,
    failed: 0,
    idleClosed: 0,
  };
  readonly #idle: IdleSweeper;
  readonly #served: Promise<void>;
  #slotFreed: (() => void) | null = null;
  #draining = false;

  /** Starts proxying connections accepted on `listener`. */
  constructor(listener: Deno.Listener, opts: TcpProxyOptions) {
    this.#listener = listener;
    this.#opts = {
      maxConnections: DEFAULT_MAX_TCP_CONNECTIONS,
      bufferBytes: DEFAULT_TCP_BUFFER_BYTES,
      connectTimeoutMs: DEFAULT_TCP_CONNECT_TIMEOUT_MS,
      connect: (ep) => Deno.connect({ hostname: ep.hostname, port: ep.port }),
      idleTimeoutMs: DEFAULT_TCP_IDLE_TIMEOUT_MS,
      now: () => performance.now(),
      ...opts,
    };
    this.#idle = new IdleSweeper({ idleMs: this.#opts.idleTimeoutMs, now: this.#opts.now });
    this.#served = this.#acceptLoop();
  }

  /** Listens on `hostname:port` (port 0 picks one) and starts proxying. */
  static listen(hostname: string, port: number, opts: TcpProxyOptions): TcpProxy {
    return new TcpProxy(Deno.listen({ hostname, port }), opts);
  }

  /** The local address actually bound. */
  get addr(): Deno.NetAddr {
    return this.#listener.addr as Deno.NetAddr;
  }

  /** Ends the connections idle past the timeout now (tests; a timer does it otherwise). */
  sweepIdle(): void {
    this.#idle.sweep();
  }

  /** A new connection cap (a configuration reload); connections already open are kept. */
  setMaxConnections(n: number): void {
    this.#opts.maxConnections = n;
    const wake = this.#slotFreed;
    this.#slotFreed = null;
    wake?.();
  }

  /** A snapshot of the counters. */
  stats(): TcpProxyStats {
    return { ...this.#stats, active: this.#active.size };
  }

  async #acceptLoop(): Promise<void> {
    while (true) {
      if (this.#active.size >= this.#opts.maxConnections) {
        await new Promise<void>((resolve) => (this.#slotFreed = resolve));
        continue;
      }
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (e) {
        if (this.#draining || e instanceof Deno.errors.BadResource) return;
        this.#opts.logger.warn("accept failed", {
          listener: this.#opts.listener.name,
          err: e as Error,
        });
        continue;
      }
      noDelay(conn);
      this.#stats.accepted++;
      this.#active.add(conn);
      this.#handle(conn).finally(() => {
        this.#active.delete(conn);
        const wake = this.#slotFreed;
        this.#slotFreed = null;
        wake?.();
      });
    }
  }

  async #connect(ep: Endpoint): Promise<Deno.Conn> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const attempt = this.#opts.connect(ep);
    try {
      return await Promise.race([
        attempt,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            attempt.then((c) => closeQuietly(c), () => {});
            reject(new Error(`connect to ${ep.key} timed out`));
          }, this.#opts.connectTimeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #handle(client: Deno.Conn): Promise<void> {
    const log = this.#opts.logger;
    const decision = this.#opts.router.route(
      this.#opts.listener,
      client.remoteAddr as Deno.NetAddr,
    );
    if (decision instanceof ProxyError) {
      log.debug("tcp connection refused", {
        listener: this.#opts.listener.name,
        why: decision.code,
      });
      this.#stats.failed++;
      closeQuietly(client);
      return;
    }
    let status = 0;
    const io = { up: 0, down: 0 };
    try {
      status = await this.#relay(client, decision, io);
    } finally {
      // The exchange of an opaque connection is its whole life: 200 once it was connected.
      decision.onDone?.(status, io.down, io.up);
    }
  }

  /** Connects `client` to an endpoint of `decision` and splices until both sides end. */
  async #relay(
    client: Deno.Conn,
    decision: RouteDecision,
    io: { up: number; down: number },
  ): Promise<number> {
    const log = this.#opts.logger;
    let upstream: Deno.Conn | null = null;
    let ep: Endpoint | null = null;
    const exclude = new Set<string>();
    for (let attempt = 0; attempt < MAX_CONNECT_ATTEMPTS && upstream === null; attempt++) {
      ep = decision.pick(attempt, exclude);
      if (ep === null) break;
      const t0 = performance.now();
      try {
        upstream = await this.#connect(ep);
        // For TCP, "response" means the connection was established.
        decision.onResult(ep, { kind: "response", status: 200 }, performance.now() - t0);
      } catch {
        const o: Outcome = { kind: "connect_failure" };
        decision.onResult(ep, o, performance.now() - t0);
        exclude.add(ep.key);
        const backoff = decision.retry(attempt, o);
        if (backoff === null) break;
        if (backoff > 0) await new Promise((r) => setTimeout(r, backoff));
      }
    }
    if (upstream === null || ep === null) {
      this.#stats.failed++;
      log.debug("tcp connection has no reachable endpoint", { cluster: decision.cluster });
      closeQuietly(client);
      return 502;
    }
    noDelay(upstream);
    this.#active.add(upstream);
    const up = upstream;
    const size = this.#opts.bufferBytes;
    // When one direction fails the other can never finish cleanly: tear the pair down.
    const teardown = () => {
      closeQuietly(client);
      closeQuietly(up);
    };
    const idle = this.#idle.watch(() => {
      this.#stats.idleClosed++;
      log.debug("tcp connection idle, closed", { cluster: decision.cluster });
      teardown();
    });
    await Promise.all([
      pipe(client, up, new Uint8Array(size), (n) => {
        this.#stats.bytesUp += n;
        io.up += n;
        idle.touch();
      }).then((r) => {
        if (r.failed) teardown();
      }),
      pipe(up, client, new Uint8Array(size), (n) => {
        this.#stats.bytesDown += n;
        io.down += n;
        idle.touch();
      }).then((r) => {
        if (r.failed) teardown();
      }),
    ]);
    idle.stop();
    teardown();
    this.#active.delete(up);
    return 200;
  }

  /** Stops accepting; open connections may finish until `deadlineMs`, then are closed. */
  async drain(deadlineMs: number): Promise<void> {
    this.#draining = true;
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    const started = Date.now();
    while (this.#active.size > 0 && Date.now() - started < deadlineMs) {
      await new Promise((r) => setTimeout(r, 10));
    }
    for (const c of this.#active) closeQuietly(c);
    this.#idle.close();
    await this.#served;
  }
}
