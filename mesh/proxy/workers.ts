/**
 * The data planes of a proxy on worker threads ({@linkcode WorkerDataPlanes}), one per
 * worker, behind the `DataPlanes` interface the proxy assembly uses (`data_planes.ts`, where
 * the in-process kind for `workers: 1` lives too).
 *
 * The main thread picks the ports first (port 0 is bound once with
 * `SO_REUSEPORT` to learn the port and held until every worker has bound it too; a fixed
 * port is probed without `SO_REUSEPORT`, so a port another process holds fails the start
 * instead of silently sharing traffic), then starts the workers, each binding every port
 * with `SO_REUSEPORT`. With an identity, each worker also binds its own `node:tls` inbound
 * server with `SO_REUSEPORT`, so mTLS is terminated on every worker.
 *
 * TLS updates (`updateMaterial`, `updateTrust`) reach every data plane: in-process at once,
 * in workers as messages, ordered with everything else the main thread sends.
 * @module
 */
import type { ProxyConfig } from "../../config/proxy_schema.ts";
import { upstreamKey } from "../../config/upstream_key.ts";
import type { Logger, LogLevel } from "../../common/log.ts";
import type { TlsMaterial } from "../../common/tls/mod.ts";
import { type Catalog, prepareCatalog, type PreparedCatalog } from "../discovery/catalog.ts";
import { type DataPlaneSnapshot, type ListenerPorts } from "./data_plane.ts";
import { type MeshTls, type MeshTrust } from "../tls/mod.ts";
import { sharedLimitBytes, SharedLimits } from "../resilience/shared_limits.ts";
import { newSessionBalanceBuffer, SessionBalance } from "../mux/session_balance.ts";
import type { ToMain, ToWorker } from "./worker_protocol.ts";
import type { DataPlanes } from "./data_planes.ts";
import type { DataPlaneChange, DataPlaneChangeResult } from "./plane_change.ts";
// A static import so `deno compile` embeds the worker module; it does nothing in this thread.
import "./worker.ts";

/** How long a worker may take to bind its listeners, in ms. */
export const WORKER_START_TIMEOUT_MS = 15_000;
/** How long a snapshot for the admin pages may take, in ms. */
export const SNAPSHOT_TIMEOUT_MS = 2_000;
/** Extra time a worker gets to report its drain beyond `drain_timeout`, in ms. */
export const DRAIN_GRACE_MS = 2_000;
/** Most worker threads a proxy runs. */
export const MAX_WORKERS = 64;
/**
 * Most worker restarts within {@linkcode RESTART_WINDOW_MS}: a worker that keeps crashing is
 * not restarted for ever; `/live` then fails so the service manager restarts the process.
 */
export const MAX_RESTARTS_PER_WINDOW = 5;
/** The window of {@linkcode MAX_RESTARTS_PER_WINDOW}, in ms. */
export const RESTART_WINDOW_MS = 60_000;

/** Resolves the `workers` setting: `auto` is the number of CPUs, capped at MAX_WORKERS. */
export function workerCount(setting: number | "auto"): number {
  const n = setting === "auto" ? navigator.hardwareConcurrency ?? 1 : setting;
  return Math.max(1, Math.min(MAX_WORKERS, Math.floor(n)));
}

/** Options of {@linkcode WorkerDataPlanes.start} beyond the configuration. */
export interface WorkerPlanesOptions {
  /** The worker module. @default ./worker.ts */
  workerUrl?: URL;
  /** How long the workers may take to bind their listeners. @default WORKER_START_TIMEOUT_MS */
  startTimeoutMs?: number;
}

interface _Slot {
  /** The current worker of this slot (a new one after a crash). */
  worker: Worker;
  index: number;
  alive: boolean;
  drained: PromiseWithResolvers<void>;
}

/** Data planes on worker threads sharing the ports with `SO_REUSEPORT`. */
export class WorkerDataPlanes implements DataPlanes {
  readonly ports: ListenerPorts;
  readonly #slots: _Slot[];
  readonly #log: Logger;
  readonly #pending = new Map<number, (s: DataPlaneSnapshot) => void>();
  readonly #reconfiguring = new Map<number, (r: DataPlaneChangeResult) => void>();
  readonly #mtls: boolean;
  #nextId = 1;
  /** What a replacement worker needs: its start message, then the latest state. */
  #restart: {
    url: URL;
    start: Extract<ToWorker, { type: "start" }>;
    sessionBalance: SharedArrayBuffer;
    catalog: PreparedCatalog | null;
    material: Map<string | undefined, TlsMaterial>;
    trust: MeshTrust | null;
  } | null = null;
  #restartTimes: number[] = [];
  #restarts = 0;
  #gaveUp = false;
  #draining = false;

  /** The in-flight counts the workers share (a crashed worker's share is given back). */
  readonly #limits: SharedLimits;

  private constructor(
    ports: ListenerPorts,
    slots: _Slot[],
    log: Logger,
    mtls: boolean,
    limits: SharedLimits,
  ) {
    this.ports = ports;
    this.#slots = slots;
    this.#log = log;
    this.#mtls = mtls;
    this.#limits = limits;
  }

  /** Requests in flight to the breaker slot `name` across the workers (admin pages, tests). */
  inFlight(name: string): number {
    return this.#limits.count(this.#limits.slot(name));
  }

  /** Worker threads restarted after a crash since start. */
  get restarts(): number {
    return this.#restarts;
  }

  /** False once a crashed worker could not be restarted (too many crashes in a minute). */
  live(): boolean {
    return !this.#gaveUp;
  }

  /** How many workers serve traffic. */
  get count(): number {
    return this.#slots.length;
  }

  /**
   * Chooses the ports, starts `count` workers and waits until each has bound every port;
   * throws (having stopped what it started) when one cannot. With `tls`, every worker
   * terminates mTLS on the shared inbound port.
   */
  static async start(
    config: ProxyConfig,
    logger: Logger,
    count: number,
    tls?: MeshTls,
    opts: WorkerPlanesOptions = {},
  ): Promise<WorkerDataPlanes> {
    const url = opts.workerUrl ?? new URL("./worker.ts", import.meta.url);
    const startTimeout = opts.startTimeoutMs ?? WORKER_START_TIMEOUT_MS;
    const limits = new SharedLimits(new SharedArrayBuffer(sharedLimitBytes(count)));
    const sessionBalance = newSessionBalanceBuffer();
    const held: Deno.Listener[] = [];
    const slots: _Slot[] = [];
    const logLevel: LogLevel =
      (["debug", "info", "warn", "error"] as const).find((l) => logger.enabled(l)) ?? "error";
    try {
      const reserve = (hostname: string, port: number): number => {
        if (port === 0) {
          const l = Deno.listen({ hostname, port: 0, reusePort: true });
          held.push(l);
          return (l.addr as Deno.NetAddr).port;
        }
        Deno.listen({ hostname, port }).close();
        return port;
      };
      const ports: ListenerPorts = {
        inbound: reserve(config.inbound.hostname, config.inbound.port),
        httpProxy: config.http_proxy
          ? reserve(config.http_proxy.hostname, config.http_proxy.port)
          : null,
        upstreams: Object.fromEntries(
          config.upstreams.map((u) => [upstreamKey(u), reserve(u.listen.hostname, u.listen.port)]),
        ),
        ingress: (config.ingress ?? []).map((l) => reserve(l.listen.hostname, l.listen.port)),
      };
      const planes = new WorkerDataPlanes(ports, slots, logger, tls !== undefined, limits);
      const started: Promise<void>[] = [];
      let template: Extract<ToWorker, { type: "start" }> | null = null;
      for (let index = 0; index < count; index++) {
        const worker = new Worker(url, { type: "module" });
        const slot: _Slot = { worker, index, alive: true, drained: Promise.withResolvers() };
        slots.push(slot);
        const ready = Promise.withResolvers<void>();
        started.push(ready.promise);
        planes.#wire(slot, ready, sessionBalance);
        const start: Extract<ToWorker, { type: "start" }> = {
          type: "start",
          config,
          index,
          workers: count,
          ports,
          limits: limits.buffer,
          sessionBalance,
          logLevel,
          ...(tls !== undefined
            ? {
              tls: {
                material: {
                  certPem: tls.material.certPem,
                  keyPem: tls.material.keyPem,
                  caPem: tls.material.caPem,
                },
                ...(tls.service !== undefined ? { service: tls.service } : {}),
                others: (tls.others ?? []).map((o) => ({
                  service: o.service,
                  material: {
                    certPem: o.material.certPem,
                    keyPem: o.material.keyPem,
                    caPem: o.material.caPem,
                  },
                })),
                trustDomain: tls.trustDomain,
                revoked: [...(tls.revoked ?? [])],
              },
            }
            : {}),
        };
        worker.postMessage(start);
        template ??= start;
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.all(started),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`workers did not start in ${startTimeout}ms`)),
            startTimeout,
          );
        }),
      ]).finally(() => clearTimeout(timer));
      // Only a worker that crashes after a successful start is restarted.
      if (template !== null) {
        planes.#restart = {
          url,
          start: template,
          sessionBalance,
          catalog: null,
          material: new Map(),
          trust: null,
        };
      }
      return planes;
    } catch (e) {
      for (const s of slots) s.worker.terminate();
      throw e;
    } finally {
      // Every worker has bound the ports (or start failed): the placeholders can go.
      for (const l of held) l.close();
    }
  }

  /** Hooks a worker's messages and its crash (which restarts it, within limits). */
  #wire(slot: _Slot, ready: PromiseWithResolvers<void>, sessionBalance: SharedArrayBuffer): void {
    const worker = slot.worker;
    worker.onmessage = (e: MessageEvent<ToMain>) => this.#onMessage(slot, e.data, ready);
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      if (slot.worker !== worker) return;
      slot.alive = false;
      // Its sessions are gone: the other workers must not keep deferring to its count.
      SessionBalance.shutSlot(sessionBalance, slot.index);
      ready.reject(new Error(`worker ${slot.index} failed: ${e.message}`));
      worker.terminate();
      // Its in-flight requests will never end: give them back before a replacement takes its column.
      this.#limits.releaseWorker(slot.index);
      this.#log.error("data-plane worker crashed", { worker: slot.index, err: e.message });
      this.#replace(slot);
    };
  }

  /** Starts a new worker in a crashed one's slot with the latest catalog and certificates. */
  #replace(slot: _Slot): void {
    const r = this.#restart;
    if (r === null || this.#draining) {
      slot.drained.resolve();
      return;
    }
    const now = Date.now();
    this.#restartTimes = this.#restartTimes.filter((t) => now - t < RESTART_WINDOW_MS);
    if (this.#restartTimes.length >= MAX_RESTARTS_PER_WINDOW) {
      this.#gaveUp = true;
      slot.drained.resolve();
      this.#log.error("a data-plane worker keeps crashing; not restarting it (/live fails)", {
        worker: slot.index,
        restarts_in_window: this.#restartTimes.length,
      });
      return;
    }
    this.#restartTimes.push(now);
    this.#restarts++;
    const start: Extract<ToWorker, { type: "start" }> = { ...r.start, index: slot.index };
    if (start.tls !== undefined) {
      const primary = r.material.get(undefined);
      start.tls = {
        ...start.tls,
        ...(primary ? { material: primary } : {}),
        others: start.tls.others?.map((o) => ({
          service: o.service,
          material: r.material.get(o.service) ?? o.material,
        })),
        ...(r.trust ? { revoked: [...r.trust.revoked] } : {}),
      };
    }
    slot.worker = new Worker(r.url, { type: "module" });
    slot.alive = true;
    const ready = Promise.withResolvers<void>();
    ready.promise.then(
      () => this.#log.info("data-plane worker restarted", { worker: slot.index }),
      () => {},
    );
    this.#wire(slot, ready, r.sessionBalance);
    slot.worker.postMessage(start);
    // Messages arrive in order: the state the others have, before anything newer.
    for (const [service, material] of r.material) {
      if (service !== undefined && start.tls?.service === service) continue;
      this.#post(slot, { type: "tls_material", material, ...(service ? { service } : {}) });
    }
    if (r.trust) this.#post(slot, { type: "tls_trust", trust: r.trust });
    if (r.catalog) this.#post(slot, { type: "catalog", prepared: r.catalog });
  }

  #onMessage(slot: _Slot, m: ToMain, ready: PromiseWithResolvers<void>): void {
    switch (m.type) {
      case "started":
        ready.resolve();
        break;
      case "failed":
        slot.alive = false;
        ready.reject(new Error(`worker ${slot.index} could not start: ${m.message}`));
        break;
      case "log":
        this.#log[m.level](m.msg, m.fields);
        break;
      case "snapshot":
        this.#pending.get(m.id)?.(m.snapshot);
        break;
      case "reconfigured":
        this.#reconfiguring.get(m.id)?.(m.result);
        break;
      case "drained":
        slot.drained.resolve();
        break;
    }
  }

  #post(slot: _Slot, m: ToWorker): void {
    if (!slot.alive) return;
    try {
      slot.worker.postMessage(m);
    } catch (e) {
      this.#log.warn("could not message a data-plane worker", {
        worker: slot.index,
        err: e as Error,
      });
    }
  }

  /**
   * Reads the catalog's resources once, here, and posts the result to every worker; messages
   * arrive in order, after "start".
   */
  applyCatalog(c: Catalog): void {
    const prepared = prepareCatalog(c, this.#log);
    if (this.#restart) this.#restart.catalog = prepared;
    for (const s of this.#slots) this.#post(s, { type: "catalog", prepared });
  }

  /**
   * Chooses the added upstreams' ports as at start (port 0 held with `SO_REUSEPORT` until every
   * worker has bound it; a fixed port probed unless a removed upstream of ours held it), then
   * has every worker apply the change and waits for their answers.
   */
  async reconfigure(
    c: Omit<DataPlaneChange, "ports">,
    running: ProxyConfig,
  ): Promise<DataPlaneChangeResult> {
    const held: Deno.Listener[] = [];
    const ports: Record<string, number> = {};
    const failed: DataPlaneChangeResult["failed"] = [];
    const ours = new Set(c.remove.map((k) => this.ports.upstreams[k]));
    const add = c.add.filter((u) => {
      const key = upstreamKey(u);
      try {
        if (u.listen.port === 0) {
          const l = Deno.listen({ hostname: u.listen.hostname, port: 0, reusePort: true });
          held.push(l);
          ports[key] = (l.addr as Deno.NetAddr).port;
        } else {
          if (!ours.has(u.listen.port)) {
            Deno.listen({ hostname: u.listen.hostname, port: u.listen.port }).close();
          }
          ports[key] = u.listen.port;
        }
        return true;
      } catch (e) {
        failed.push({ key, error: (e as Error).message ?? String(e) });
        return false;
      }
    });
    try {
      const live = this.#slots.filter((s) => s.alive);
      const answers = await Promise.all(live.map((s) => {
        const id = this.#nextId++;
        return new Promise<DataPlaneChangeResult | null>((resolve) => {
          const timer = setTimeout(() => {
            this.#reconfiguring.delete(id);
            resolve(null);
          }, WORKER_START_TIMEOUT_MS);
          this.#reconfiguring.set(id, (r) => {
            clearTimeout(timer);
            this.#reconfiguring.delete(id);
            resolve(r);
          });
          this.#post(s, { type: "reconfigure", id, change: { ...c, add, ports } });
        });
      }));
      const opened: Record<string, number> = {};
      for (const u of add) {
        const key = upstreamKey(u);
        const why = answers.flatMap((a) =>
          a === null ? ["a worker did not answer"] : a.failed.filter((f) => f.key === key)
            .map((f) => f.error)
        );
        if (why.length > 0) failed.push({ key, error: why[0]! });
        else opened[key] = ports[key]!;
      }
      // Workers that did bind an upstream another could not close it again: all serve the same.
      const undo = add.map(upstreamKey).filter((k) => !(k in opened));
      if (undo.length > 0) {
        const change = { add: [], remove: undo, ports: {}, locals: null, limits: null, drainMs: 0 };
        for (const s of live) this.#post(s, { type: "reconfigure", id: this.#nextId++, change });
      }
      for (const k of c.remove) delete this.ports.upstreams[k];
      Object.assign(this.ports.upstreams, opened);
      if (this.#restart !== null) {
        this.#restart.start = {
          ...this.#restart.start,
          // Without what could not be opened: a restarted worker binds what the others serve.
          config: {
            ...running,
            upstreams: running.upstreams.filter((u) => upstreamKey(u) in this.ports.upstreams),
          },
          ports: { ...this.ports, upstreams: { ...this.ports.upstreams } },
        };
      }
      return { opened, failed };
    } finally {
      for (const l of held) l.close();
    }
  }

  /** Posts `service`'s new material to every worker (after whatever was posted before). */
  updateMaterial(m: TlsMaterial, service?: string): void {
    if (!this.#mtls) return;
    const material: TlsMaterial = { certPem: m.certPem, keyPem: m.keyPem, caPem: m.caPem };
    this.#restart?.material.set(service, material);
    const msg: ToWorker = service === undefined
      ? { type: "tls_material", material }
      : { type: "tls_material", material, service };
    for (const s of this.#slots) this.#post(s, msg);
  }

  /** Posts a new bundle and revocation list to every worker. */
  updateTrust(t: MeshTrust): void {
    if (!this.#mtls) return;
    const trust: MeshTrust = {
      roots: [...t.roots],
      revoked: [...t.revoked],
      distrusted: [...(t.distrusted ?? [])],
    };
    if (this.#restart) this.#restart.trust = trust;
    for (const s of this.#slots) this.#post(s, { type: "tls_trust", trust });
  }

  /** Asks every worker for a snapshot; a worker that does not answer in time is left out. */
  snapshots(): Promise<DataPlaneSnapshot[]> {
    const live = this.#slots.filter((s) => s.alive);
    return Promise.all(live.map((s) => {
      const id = this.#nextId++;
      return new Promise<DataPlaneSnapshot | null>((resolve) => {
        const timer = setTimeout(() => {
          this.#pending.delete(id);
          resolve(null);
        }, SNAPSHOT_TIMEOUT_MS);
        this.#pending.set(id, (snap) => {
          clearTimeout(timer);
          this.#pending.delete(id);
          resolve(snap);
        });
        this.#post(s, { type: "snapshot", id });
      });
    })).then((all) => all.filter((s): s is DataPlaneSnapshot => s !== null));
  }

  /** Drains every worker, then terminates them. */
  async drain(ms: number): Promise<void> {
    this.#draining = true;
    for (const s of this.#slots) this.#post(s, { type: "drain", ms });
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(this.#slots.map((s) => s.drained.promise)),
      new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          this.#log.warn("data-plane workers did not finish draining in time", {
            grace_ms: DRAIN_GRACE_MS,
          });
          resolve();
        }, ms + DRAIN_GRACE_MS);
      }),
    ]);
    clearTimeout(timer);
    for (const s of this.#slots) {
      s.alive = false;
      s.worker.terminate();
    }
  }
}
