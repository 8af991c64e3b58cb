/**
 * The proxy's side of the control plane: register the local instances, heartbeat them with
 * the result of their active health checks, watch the catalog with blocking queries, keep the
 * last-known catalog on disk, and deregister on shutdown.
 *
 * Nothing here blocks the data plane: {@linkcode Discovery.start} returns once the cached
 * catalog (if any) was handed over, and every loop keeps trying in the background with
 * bounded backoff, failing over between the `control:` URLs.
 * @module
 */
import type { ProxyConfig } from "../../config/mod.ts";
import type { Logger } from "../../common/log.ts";
import { MAX_DISTRUSTED_INTERMEDIATES } from "../../common/tls/distrust.ts";
import { abortableSleep, HealthChecker, type HealthStatus, httpProber } from "../resilience/mod.ts";
import { loadCatalog, saveCatalog } from "./cache.ts";
import { type Catalog, CatalogSchema, HeartbeatAnswer } from "./catalog.ts";
import { Backoff, ControlClient, ControlUnavailableError } from "./control_client.ts";
import {
  applyCatalogDelta,
  CATALOG_DELTA_HEADER,
  CatalogDeltaSchema,
  DeltaBaseError,
  isDeltaAnswer,
} from "./delta.ts";

/** How long a blocking catalog query waits at the control node, in ms. */
export const DEFAULT_WATCH_WAIT_MS = 30_000;
/** Extra time over the blocking wait before the proxy gives up on the answer, in ms. */
export const WATCH_SLACK_MS = 5_000;
/** First backoff after every control URL failed, in ms. */
export const DEFAULT_BACKOFF_BASE_MS = 200;
/** Longest backoff between rounds of failed control calls, in ms. */
export const DEFAULT_BACKOFF_MAX_MS = 5_000;
/** How often one heartbeat re-registers forgotten instances and heartbeats again. */
export const HEARTBEAT_REREGISTER_ROUNDS = 2;
/** Bound on deregistering every local instance at shutdown, in ms. */
export const DEREGISTER_TIMEOUT_MS = 3_000;
/** While the catalog watch keeps failing, how often the error is logged again, in ms. */
export const WATCH_FAILURE_REPEAT_MS = 60_000;
/**
 * When the control node holding the catalog watch fails, the most the watch waits before asking
 * the next one, in ms: spread at random, a dead node's watchers do not all arrive at once.
 */
export const WATCH_FAILOVER_JITTER_MS = 1_000;
/** Most revoked ids a catalog carries (the catalog schema's bound), merged ones included. */
export const MAX_REMEMBERED_REVOCATIONS = 10_000;

/** The settings of {@linkcode LocalService} that matter here (a validated proxy.yaml entry). */
export type LocalServiceConfig = ProxyConfig["services"][number];

/** Where the catalog in use came from. */
export type CatalogSource = "none" | "cache" | "control";

/** Options of {@linkcode Discovery}. */
export interface DiscoveryOptions {
  /** This proxy's node name. */
  node: string;
  /** This proxy's zone. */
  zone: string;
  /** Address other proxies use to reach the inbound listener. */
  advertise: string;
  /** The inbound listener's port: what instances are registered with. */
  inboundPort: number;
  /** Control API base URLs. */
  controlUrls: readonly string[];
  /** Bearer token for the control API, if any. */
  token?: string;
  /** Where the last-known catalog is kept. */
  dataDir: string;
  /** Local instances to register. */
  services: readonly LocalServiceConfig[];
  /** Time between heartbeats, in ms. */
  heartbeatIntervalMs: number;
  /**
   * What the proxy holds for `service` (trusted roots, the root of its certificate), sent with
   * each heartbeat so a CA rotation knows when this proxy has caught up. @default none sent
   */
  trustReport?: (
    service: string,
  ) => { roots: string[]; leaf_root: string | null; leaf_issuer?: string | null } | null;
  /** Structured logger. */
  logger: Logger;
  /** Hears every new catalog, from the cache at start and then from the control plane. */
  onCatalog: (catalog: Catalog, source: CatalogSource) => void;
  /** Injectable for tests. @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Reaches the control API (HTTPS with the proxy's certificate). @default `fetch` */
  controlFetch?: typeof fetch;
  /**
   * Reaches the control API as `service` (with that service's certificate) to register,
   * heartbeat and deregister its instances: the API lets a proxy write only its own service's.
   * Undefined for a service means `controlFetch`. @default always `controlFetch`
   */
  serviceFetch?: (service: string) => typeof fetch | undefined;
  /** Uniform random in [0, 1) for backoff jitter. @default Math.random */
  random?: () => number;
  /** Longest random wait before the watch tries the next node. @default WATCH_FAILOVER_JITTER_MS */
  watchFailoverJitterMs?: number;
  /** What the proxy says about itself with each heartbeat (version, certificate expiry). */
  report?: () => ProxySelfReport | undefined;
  /** @default DEFAULT_WATCH_WAIT_MS */
  watchWaitMs?: number;
  /** @default DEFAULT_BACKOFF_BASE_MS */
  backoffBaseMs?: number;
  /** @default DEFAULT_BACKOFF_MAX_MS */
  backoffMaxMs?: number;
  /**
   * The dashboard report sent with the first service's heartbeat of each round (counters the
   * proxy already keeps; see common/heartbeat_stats.ts), if any.
   */
  heartbeatStats?: () => Promise<unknown>;
}

/** The `proxy` part of a heartbeat: what `skein ctl check` learns about this proxy. */
export interface ProxySelfReport {
  node: string;
  version: string;
  /** Earliest expiry of the certificates in use, ms since the epoch; null without mTLS. */
  cert_not_after: number | null;
  /** Settings and resource parts accepted but not enforced by this version. */
  unenforced: string[];
}

/** One local instance and its registration state. */
interface _Local {
  service: string;
  id: string;
  cfg: LocalServiceConfig;
  checker: HealthChecker | null;
  registered: boolean;
  /** Stops this instance's health checks (it left the configuration). */
  stop: AbortController;
}

/** A snapshot for the admin pages. */
export interface DiscoveryStatus {
  /** Where the catalog in use came from. */
  catalogSource: CatalogSource;
  /** Index of the catalog in use. */
  catalogIndex: number;
  /** The control URL used last for registration and heartbeats. */
  controlUrl: string;
  /** The control URL the catalog watch uses now. */
  watchUrl: string;
  /** Whether the last call to the control plane succeeded. */
  controlReachable: boolean;
  /** Local instances with their health and registration state. */
  instances: { service: string; id: string; health: HealthStatus; registered: boolean }[];
  /** Failed catalog queries since start (unreachable, refused, oversized or invalid answers). */
  watchFailures: number;
  /** Whether the last catalog query failed, so the catalog in use may be out of date. */
  catalogStale: boolean;
}

/** The instance id of a local service: its configured `id`, else `<node>-<service>`. */
export function localInstanceId(node: string, s: { name: string; id?: string }): string {
  return s.id ?? `${node}-${s.name}`;
}

/** Registration, heartbeats, catalog watch and the catalog cache of one proxy. */
export class Discovery {
  readonly #o: DiscoveryOptions;
  readonly #log: Logger;
  readonly #client: ControlClient;
  /** The catalog watch's own client: it starts at a random node so a fleet spreads its load. */
  readonly #watchClient: ControlClient;
  /** The catalog applied last from the control plane, the base its deltas apply to. */
  #catalog: Catalog | null = null;
  /** The highest catalog index applied from the control plane. */
  #highest = 0;
  /** Clients that write as one local service, by service (see `serviceFetch`). */
  readonly #writers = new Map<string, ControlClient>();
  readonly #locals: _Local[];
  readonly #ac = new AbortController();
  readonly #loops: Promise<void>[] = [];
  #source: CatalogSource = "none";
  #index = 0;
  /** The revoked ids of the catalog applied last. */
  #revoked: readonly string[] = [];
  /** The distrusted intermediates (PEM) of the catalog applied last. */
  #distrusted: readonly string[] = [];
  #reachable = false;
  #watchFailures = 0;
  #watchFailing = false;
  #saving: Promise<void> = Promise.resolve();
  #wakeHeartbeat: (() => void) | null = null;

  /** Creates the component; nothing runs until {@linkcode start}. */
  constructor(opts: DiscoveryOptions) {
    this.#o = opts;
    this.#log = opts.logger.with({ component: "discovery" });
    this.#client = new ControlClient({
      urls: opts.controlUrls,
      token: opts.token,
      fetch: opts.controlFetch ?? opts.fetch,
    });
    const random = opts.random ?? Math.random;
    this.#watchClient = new ControlClient({
      urls: opts.controlUrls,
      token: opts.token,
      fetch: opts.controlFetch ?? opts.fetch,
      startAt: Math.floor(random() * opts.controlUrls.length),
      failoverJitterMs: opts.watchFailoverJitterMs ?? WATCH_FAILOVER_JITTER_MS,
      random,
    });
    this.#locals = opts.services.map((s) => this.#local(s));
  }

  #local(s: LocalServiceConfig): _Local {
    return {
      service: s.name,
      id: localInstanceId(this.#o.node, s),
      cfg: s,
      checker: s.health
        ? new HealthChecker(
          httpProber(`http://127.0.0.1:${s.port}${s.health.http}`, this.#o.fetch ?? fetch),
          {
            intervalMs: s.health.interval,
            timeoutMs: s.health.timeout,
            rise: s.health.healthy_threshold,
            fall: s.health.unhealthy_threshold,
          },
          (now, before) => {
            this.#log.info("local instance health changed", {
              service: s.name,
              health: now,
              before,
            });
            this.#wakeHeartbeat?.();
          },
        )
        : null,
      registered: false,
      stop: new AbortController(),
    };
  }

  #runChecker(l: _Local): void {
    const c = l.checker;
    if (c === null) return;
    const signal = AbortSignal.any([this.#ac.signal, l.stop.signal]);
    this.#loops.push((async () => {
      await abortableSleep(c.intervalMs, signal);
      await c.run(signal);
    })());
  }

  /**
   * The local services after a configuration reload: instances gone are deregistered; new and
   * changed ones are probed and registered again (a PUT replaces the old fields) by a
   * heartbeat made at once. Instances that did not change are left alone.
   */
  async setServices(services: readonly LocalServiceConfig[]): Promise<void> {
    const next = new Map(services.map((s) => [localInstanceId(this.#o.node, s), s]));
    const have = new Map(this.#locals.map((l) => [l.id, l]));
    const gone = this.#locals.filter((l) => next.get(l.id)?.name !== l.service);
    const kept: _Local[] = [];
    const fresh: _Local[] = [];
    for (const [id, s] of next) {
      const old = have.get(id);
      if (old !== undefined && JSON.stringify(old.cfg) === JSON.stringify(s)) {
        kept.push(old);
        continue;
      }
      old?.stop.abort();
      const l = this.#local(s);
      fresh.push(l);
      kept.push(l);
    }
    for (const l of gone) l.stop.abort();
    this.#locals.splice(0, this.#locals.length, ...kept);
    await this.#deregister(gone, DEREGISTER_TIMEOUT_MS);
    await Promise.all(fresh.map((l) => l.checker?.check()));
    for (const l of fresh) this.#runChecker(l);
    this.#wakeHeartbeat?.();
  }

  /**
   * A catalog older than the one applied: a lagging control node answered the stale watch, or
   * the cluster was rebuilt. Its endpoints are taken as they are, but never its lack of a
   * revocation or distrusted intermediate seen before: an old answer must not readmit a revoked
   * identity or a distrusted intermediate's leaves.
   */
  #keepRevocations(c: Catalog, from: string): Catalog {
    const have = new Set(c.trust.revoked);
    const missing = this.#revoked.filter((id) => !have.has(id));
    const distrusted = c.trust.distrusted ?? [];
    const lacking = this.#distrusted.filter((p) => !distrusted.includes(p));
    this.#log.warn("catalog index went back; keeping the revocations it lacks", {
      from: this.#index,
      to: c.index,
      url: from,
      kept: missing.length + lacking.length,
    });
    if (missing.length === 0 && lacking.length === 0) return c;
    const revoked = [...c.trust.revoked, ...missing].slice(-MAX_REMEMBERED_REVOCATIONS);
    return {
      ...c,
      trust: {
        ...c.trust,
        revoked,
        ...(distrusted.length + lacking.length > 0
          ? { distrusted: [...distrusted, ...lacking].slice(-MAX_DISTRUSTED_INTERMEDIATES) }
          : {}),
      },
    };
  }

  /**
   * Hands the cached catalog (if any) to `onCatalog`, runs the first health probes, and starts
   * the background loops. Does not wait for the control plane.
   */
  async start(): Promise<void> {
    try {
      const cached = await loadCatalog(this.#o.dataDir);
      if (cached !== null) {
        this.#source = "cache";
        this.#index = cached.index;
        this.#highest = cached.index;
        this.#revoked = cached.trust.revoked;
        this.#distrusted = cached.trust.distrusted ?? [];
        this.#log.info("serving from the cached catalog until the control plane answers", {
          index: cached.index,
        });
        this.#o.onCatalog(cached, "cache");
      }
    } catch (e) {
      this.#log.warn("ignoring the cached catalog", { err: e as Error });
    }
    // The first probe decides the health the instance is registered with.
    await Promise.all(this.#locals.map((l) => l.checker?.check()));
    for (const l of this.#locals) this.#runChecker(l);
    this.#loops.push(this.#heartbeatLoop(), this.#watchLoop());
  }

  /** The catalog state and local instances, for `/ready` and `/config`. */
  status(): DiscoveryStatus {
    return {
      catalogSource: this.#source,
      catalogIndex: this.#index,
      controlUrl: this.#client.currentUrl,
      watchUrl: this.#watchClient.currentUrl,
      controlReachable: this.#reachable,
      instances: this.#locals.map((l) => ({
        service: l.service,
        id: l.id,
        health: this.#health(l),
        registered: l.registered,
      })),
      watchFailures: this.#watchFailures,
      catalogStale: this.#watchFailing,
    };
  }

  /** Stops the loops and deregisters every local instance (bounded by `timeoutMs`). */
  async stop(timeoutMs = DEREGISTER_TIMEOUT_MS): Promise<void> {
    this.#ac.abort();
    this.#wakeHeartbeat?.();
    await Promise.allSettled(this.#loops);
    await this.#deregister(this.#locals, timeoutMs);
    await this.#saving;
  }

  async #deregister(locals: readonly _Local[], timeoutMs: number): Promise<void> {
    const deadline = AbortSignal.timeout(timeoutMs);
    await Promise.allSettled(locals.map(async (l) => {
      try {
        const r = await this.#writer(l.service).request(
          "DELETE",
          `/v1/services/${encodeURIComponent(l.service)}/instances/${encodeURIComponent(l.id)}`,
          { signal: deadline, timeoutMs },
        );
        l.registered = false;
        this.#log.info("deregistered", { service: l.service, id: l.id, status: r.status });
      } catch (e) {
        this.#log.warn("could not deregister; the control plane will expire the lease", {
          service: l.service,
          id: l.id,
          err: e as Error,
        });
      }
    }));
  }

  #health(l: _Local): HealthStatus {
    return l.checker?.status ?? "passing";
  }

  /** The client that writes as `service` (one per distinct local service). */
  #writer(service: string): ControlClient {
    let c = this.#writers.get(service);
    if (c === undefined) {
      const f = this.#o.serviceFetch?.(service);
      c = f === undefined ? this.#client : new ControlClient({
        urls: this.#o.controlUrls,
        token: this.#o.token,
        fetch: f,
      });
      this.#writers.set(service, c);
    }
    return c;
  }

  async #register(l: _Local): Promise<void> {
    const s = l.cfg;
    const r = await this.#writer(l.service).request(
      "PUT",
      `/v1/services/${encodeURIComponent(l.service)}/instances/${encodeURIComponent(l.id)}`,
      {
        body: {
          node: this.#o.node,
          address: this.#o.advertise,
          port: this.#o.inboundPort,
          zone: this.#o.zone,
          version: s.version,
          weight: s.weight,
          tags: s.tags,
          capabilities: s.capabilities,
          meta: s.meta,
          health: this.#health(l),
        },
        signal: this.#ac.signal,
      },
    );
    if (r.status !== 200 && r.status !== 201) {
      throw new Error(
        `registering ${l.service}/${l.id} got ${r.status}: ${JSON.stringify(r.body)}`,
      );
    }
    l.registered = true;
    this.#log.info("registered", {
      service: l.service,
      id: l.id,
      address: this.#o.advertise,
      port: this.#o.inboundPort,
      health: this.#health(l),
    });
  }

  /**
   * One heartbeat per local service, each with that service's credentials (the API accepts
   * from a proxy certificate only instances of its own service). A failing service does not
   * hold back the others; the failures are thrown together afterwards.
   */
  async #heartbeatOnce(): Promise<void> {
    const byService = new Map<string, _Local[]>();
    for (const l of this.#locals) {
      const list = byService.get(l.service);
      if (list === undefined) byService.set(l.service, [l]);
      else list.push(l);
    }
    const failures: string[] = [];
    let stats: unknown = undefined;
    try {
      stats = await this.#o.heartbeatStats?.();
    } catch (e) {
      this.#log.debug("no dashboard report this round", { err: e as Error });
    }
    for (const [service, locals] of byService) {
      try {
        await this.#heartbeatService(service, locals, HEARTBEAT_REREGISTER_ROUNDS, stats);
        stats = undefined;
      } catch (e) {
        if (this.#ac.signal.aborted) throw e;
        failures.push(`${service}: ${(e as Error).message}`);
      }
    }
    if (failures.length > 0) throw new Error(failures.join("; "));
  }

  async #heartbeatService(
    service: string,
    locals: _Local[],
    rounds: number,
    stats?: unknown,
  ): Promise<void> {
    for (const l of locals) if (!l.registered) await this.#register(l);
    const r = await this.#writer(service).request("PUT", "/v1/heartbeat", {
      body: {
        instances: locals.map((l) => ({ service: l.service, id: l.id, health: this.#health(l) })),
        proxy: this.#o.report?.(),
        ...this.#trustFields(service),
        ...(stats !== undefined ? { stats } : {}),
      },
      signal: this.#ac.signal,
    });
    if (r.status !== 200) throw new Error(`heartbeat got ${r.status}: ${JSON.stringify(r.body)}`);
    const a = HeartbeatAnswer.safeParse(r.body);
    if (!a.success) return;
    for (const u of a.data.unknown) {
      // The control plane forgot us (a wiped cluster, or an operator deregistered us): re-register.
      const l = locals.find((x) => x.service === u.service && x.id === u.id);
      if (l) l.registered = false;
    }
    if (a.data.unknown.length > 0 && rounds > 0) {
      await this.#heartbeatService(service, locals, rounds - 1);
    }
  }

  #trustFields(
    service: string,
  ): { trust?: { roots: string[]; leaf_root: string | null; leaf_issuer?: string | null } } {
    try {
      const t = this.#o.trustReport?.(service) ?? null;
      return t === null ? {} : { trust: t };
    } catch (e) {
      // A heartbeat without the report still keeps the lease; the rotation waits a little longer.
      this.#log.warn("could not describe the trust bundle for the heartbeat", { err: e as Error });
      return {};
    }
  }

  async #heartbeatLoop(): Promise<void> {
    if (this.#locals.length === 0) return;
    const signal = this.#ac.signal;
    let failing = false;
    while (!signal.aborted) {
      try {
        await this.#heartbeatOnce();
        if (failing) this.#log.info("heartbeats are accepted again");
        failing = false;
      } catch (e) {
        if (signal.aborted) break;
        if (!failing) {
          this.#log.warn("heartbeat failed; will keep trying", { err: e as Error });
        }
        failing = true;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, this.#o.heartbeatIntervalMs);
        function done() {
          clearTimeout(t);
          resolve();
        }
        this.#wakeHeartbeat = done;
      });
      this.#wakeHeartbeat = null;
    }
  }

  async #watchLoop(): Promise<void> {
    const signal = this.#ac.signal;
    const waitMs = this.#o.watchWaitMs ?? DEFAULT_WATCH_WAIT_MS;
    const backoff = new Backoff(
      this.#o.backoffBaseMs ?? DEFAULT_BACKOFF_BASE_MS,
      this.#o.backoffMaxMs ?? DEFAULT_BACKOFF_MAX_MS,
      this.#o.random,
    );
    let fromControl = false;
    let failing = false;
    let loggedAt = 0;
    while (!signal.aborted) {
      try {
        // The first query does not block: the cache may be older than anything the control
        // plane has. `stale=true` lets any control node answer, so a lost leader or quorum
        // does not stop catalog updates that the survivors already know.
        const q = fromControl
          ? `/v1/catalog?stale=true&index=${this.#index}&wait=${Math.ceil(waitMs / 1000)}s`
          : "/v1/catalog?stale=true";
        const r = await this.#watchClient.request("GET", q, {
          timeoutMs: (fromControl ? waitMs : 0) + WATCH_SLACK_MS,
          signal,
          // Only the blocking query has a base to apply a delta to.
          headers: fromControl ? { [CATALOG_DELTA_HEADER]: "1" } : undefined,
        });
        if (r.status !== 200) throw new Error(`catalog query got ${r.status}`);
        let next: Catalog;
        if (isDeltaAnswer(r.body)) {
          const d = CatalogDeltaSchema.safeParse(r.body);
          if (!d.success) {
            const i = d.error.issues[0];
            throw new Error(`catalog delta is invalid at ${i?.path.join(".")}: ${i?.message}`);
          }
          if (!fromControl || this.#catalog === null) {
            throw new DeltaBaseError("a catalog delta came before any whole catalog");
          }
          try {
            next = applyCatalogDelta(this.#catalog, d.data);
          } catch (e) {
            // The next query asks for the whole catalog again.
            fromControl = false;
            throw e;
          }
        } else {
          const p = CatalogSchema.safeParse(r.body);
          if (!p.success) {
            const i = p.error.issues[0];
            throw new Error(`catalog answer is invalid at ${i?.path.join(".")}: ${i?.message}`);
          }
          next = p.data;
        }
        this.#reachable = true;
        if (failing) this.#log.info("catalog watch reconnected", { url: r.url });
        failing = false;
        this.#watchFailing = false;
        backoff.reset();
        // A different index (even a lower one, after a cluster was rebuilt) is a new catalog.
        if (!fromControl || next.index !== this.#index) {
          // Below the highest index seen, not just the last: an older answer followed by a delta
          // from it must not readmit what the newest catalog revoked either.
          const c = next.index < this.#highest ? this.#keepRevocations(next, r.url) : next;
          this.#highest = Math.max(this.#highest, c.index);
          fromControl = true;
          this.#catalog = c;
          this.#index = c.index;
          this.#revoked = c.trust.revoked;
          this.#distrusted = c.trust.distrusted ?? [];
          this.#source = "control";
          this.#o.onCatalog(c, "control");
          this.#persist(c);
        }
      } catch (e) {
        if (signal.aborted) break;
        this.#reachable = false;
        this.#watchFailures++;
        this.#watchFailing = true;
        // Loud and repeated: while this lasts, no revocation or policy change reaches the proxy.
        const now = Date.now();
        if (!failing || now - loggedAt >= WATCH_FAILURE_REPEAT_MS) {
          loggedAt = now;
          this.#log.error(
            "catalog watch failed; serving the last-known catalog (revocations and policy changes do not arrive until it recovers)",
            {
              err: e as Error,
              catalog: this.#source,
              index: this.#index,
              failures: this.#watchFailures,
            },
          );
        }
        failing = true;
        if (!(e instanceof ControlUnavailableError)) {
          this.#log.debug("catalog watch error", { err: e as Error });
        }
        await abortableSleep(backoff.next(), signal);
      }
    }
  }

  #persist(c: Catalog): void {
    // Writes are chained so an older catalog can never overwrite a newer one.
    this.#saving = this.#saving.then(() => saveCatalog(this.#o.dataDir, c)).catch((e) => {
      this.#log.warn("could not save the catalog cache", { err: e as Error });
    });
  }
}
