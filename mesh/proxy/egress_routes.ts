/**
 * Egress at the calling proxy: each `ExternalService` is a destination whose endpoints are its
 * hosts, dialled with TLS the proxy originates (endpoints marked `origin`, see `mesh/egress/`),
 * with the `Policy` and `Route` of its name like any destination, so balancing, timeouts,
 * retries, the breaker, outlier detection, metrics, the access log and traces all apply.
 *
 * Who may call it: an `Authorization` whose `service` is the external service's name, read as
 * at an inbound (the same rules and audit lines) but enforced here, since no proxy fronts the
 * external host. The caller is the local service the call is made for (an upstream's
 * `caller`, else the first service; `http_proxy` always the first). No `Authorization` = every
 * local service may call it, as at an inbound.
 *
 * `egress: registered_only` refuses, on `http_proxy`, a `Host` that is neither a mesh service
 * nor a host of an external service: 403 `egress_denied`, one audit line each.
 * @module
 */
import type { Logger } from "../../common/log.ts";
import type { Resource } from "../../config/resource_schema.ts";
import { type Endpoint as BalancedEndpoint } from "../balance/mod.ts";
import { ProxyError, type RouteDecision } from "../forward/mod.ts";
import { markHopByHop, type RequestHead } from "../http1/mod.ts";
import { auditRecord, InboundAuthz } from "../authz/mod.ts";
import {
  EMPTY_EXTERNAL_TABLE,
  externalEndpointKey,
  type ExternalEntry,
  type ExternalTable,
  externalTable,
  hostLine,
  originForm,
} from "../egress/mod.ts";
import { serviceSpiffeId } from "../tls/mod.ts";
import { Destination, type DestinationDeps, type DestinationStats } from "./destination.ts";

/** Options of {@linkcode EgressRoutes}. */
export interface EgressRoutesOptions {
  /** What every destination needs from the proxy. */
  deps: DestinationDeps;
  /** The mesh's trust domain: callers are `spiffe://<td>/svc/<local service>`. */
  trustDomain: string | undefined;
  /** `registered_only`: unknown hosts on `http_proxy` are refused. @default "open" */
  mode?: "open" | "registered_only";
  /** Reads a CA file. @default Deno.readTextFileSync */
  readFile?: (path: string) => string;
  /** Whether the catalog has a mesh service of that name (it wins over an external one). */
  isMeshService?: (name: string) => boolean;
}

/** Fields that ask a server to treat a request as another method. */
const METHOD_OVERRIDE_FIELDS = ["x-http-method-override", "x-http-method", "x-method-override"];

interface _External {
  entry: ExternalEntry;
  d: Destination;
}

/** The external services of one data plane. */
export class EgressRoutes {
  readonly #o: EgressRoutesOptions;
  readonly #log: Logger;
  readonly #audit: Logger;
  readonly #authz: InboundAuthz;
  readonly #callers = new Map<string, string | null>();
  #table: ExternalTable = EMPTY_EXTERNAL_TABLE;
  #externals = new Map<string, _External>();
  #conflicts = "";

  /** Creates the routes with no external service until {@linkcode apply}. */
  constructor(opts: EgressRoutesOptions) {
    this.#o = opts;
    this.#log = opts.deps.logger;
    this.#audit = opts.deps.logger.with({ component: "audit" });
    this.#authz = new InboundAuthz({
      services: [],
      trustDomain: opts.trustDomain,
      logger: opts.deps.logger,
    });
  }

  /** How many external services there are (0: the router skips egress altogether). */
  get size(): number {
    return this.#externals.size;
  }

  /**
   * Takes a new catalog's resources: the external services (a changed one gets new endpoints,
   * its CA file read again), their Policy and Route, and the Authorizations naming them.
   */
  apply(resources: readonly Resource[], unreadableAuthorizations: readonly string[]): void {
    const table = externalTable(resources);
    const policies = new Map<string, Resource & { kind: "Policy" }>();
    const routes = new Map<string, Resource & { kind: "Route" }>();
    for (const r of resources) {
      if (r.kind === "Policy") policies.set(r.service, r);
      else if (r.kind === "Route") routes.set(r.service, r);
    }
    const next = new Map<string, _External>();
    for (const entry of table.byName.values()) {
      const old = this.#externals.get(entry.name);
      const d = old?.d ?? new Destination(entry.name, this.#o.deps, {
        limitKey: `egress:${entry.name}`,
        endpointHeaders: true,
      });
      if (old === undefined || old.entry.source !== entry.source) {
        d.setEndpointsWithHeaders(this.#endpoints(entry));
      }
      d.setPolicy(policies.get(entry.name));
      d.setRoute(routes.get(entry.name));
      next.set(entry.name, { entry, d });
    }
    this.#externals = next;
    this.#table = table;
    const conflicts = JSON.stringify(table.conflicts);
    if (conflicts !== this.#conflicts && table.conflicts.length > 0) {
      for (const c of table.conflicts) {
        this.#log.warn("a host is listed by two ExternalServices; the first one gets its calls", {
          host: c.host,
          kept: c.kept,
          ignored: c.ignored,
        });
      }
    }
    this.#conflicts = conflicts;
    this.#authz.setServices([...next.keys()]);
    this.#authz.apply(resources, unreadableAuthorizations);
  }

  #endpoints(entry: ExternalEntry): { endpoint: BalancedEndpoint; headers: string }[] {
    let caPem: string | null = null;
    let caError: string | undefined;
    if (entry.caFile !== null) {
      try {
        caPem = (this.#o.readFile ?? Deno.readTextFileSync)(entry.caFile);
      } catch (e) {
        caError = `cannot read ca_file ${entry.caFile} of ExternalService ${entry.name}: ${
          (e as Error).message
        }`;
        // Never the built-in roots instead: calls fail, and say why, until the file is there.
        this.#log.error("ExternalService ca_file unreadable; its calls fail", {
          service: entry.name,
          ca_file: entry.caFile,
          err: e as Error,
        });
      }
    }
    return entry.hosts.map((h) => {
      const endpoint = {
        key: externalEndpointKey(entry.name, h),
        hostname: h.host,
        port: h.port,
        weight: 1,
        zone: "",
        origin: { serverName: h.host, caPem, ...(caError !== undefined ? { caError } : {}) },
      };
      return { endpoint, headers: hostLine(h) };
    });
  }

  /**
   * The destination of the external service listing `authority` (`host:port`, lower-case), else
   * host name `host` on any port (a `Host` without a port, or with the port 80 an app may add).
   */
  forHost(host: string, authority = host): Destination | undefined {
    const name = this.#table.byHost.get(authority) ?? this.#table.byHost.get(host);
    return name === undefined ? undefined : this.#externals.get(name)?.d;
  }

  /**
   * The external service an upstream's `service` names, unless the catalog has a mesh service
   * of that name (then the mesh service, as `http_proxy` also prefers it).
   */
  named(service: string): Destination | undefined {
    const d = this.#externals.get(service)?.d;
    return d !== undefined && !this.#isMesh(service) ? d : undefined;
  }

  /** Whether `name` (a destination or `Host`) is an external service no mesh service shadows. */
  isExternal(name: string): boolean {
    return this.#externals.size > 0 && !this.#isMesh(name) &&
      (this.#externals.has(name) || this.forHost(name) !== undefined);
  }

  /**
   * Routes an `http_proxy` request whose Host (`host`, lower-case, no port; `authority` as
   * sent) names no mesh service, which `meshAnswer` says: the external service listing that
   * host or named so, else a refusal in `registered_only` mode, else `meshAnswer` as before.
   */
  byHost(
    host: string,
    authority: string,
    head: RequestHead,
    caller: string,
    meshAnswer: ProxyError,
  ): RouteDecision | ProxyError {
    const d = this.forHost(host, authority.trim().toLowerCase()) ?? this.#externals.get(host)?.d;
    if (d !== undefined) return this.decide(d, head, caller);
    return this.#o.mode === "registered_only" ? this.refuse(host, head, caller) : meshAnswer;
  }

  /** The answer to an opaque TCP upstream naming an external service, or null for others. */
  refuseTcp(service: string): ProxyError | null {
    if (this.named(service) === undefined) return null;
    // Refused rather than tunnelled into the mesh, where no instance of that name exists.
    return new ProxyError(
      404,
      "no_route",
      `${service} is an ExternalService: call it over an upstream with protocol: http`,
    );
  }

  #isMesh(name: string): boolean {
    return this.#o.isMeshService?.(name) ?? false;
  }

  /**
   * Plans one request of local service `caller` to external destination `d`: its
   * Authorization first, then the request is readied for the host (its own `Host`, an
   * origin-form target) and planned like any destination's.
   */
  decide(d: Destination, head: RequestHead, caller: string): RouteDecision | ProxyError {
    if (head.method === "CONNECT") {
      // No tunnel here: forwarding CONNECT as a request would reach the host as nonsense.
      return new ProxyError(
        400,
        "bad_request",
        `CONNECT is not supported for ${d.service}: send plain HTTP, the proxy originates TLS`,
      );
    }
    const denied = this.#authz.checkHttp(d.service, head, this.#callerId(caller));
    if (denied !== null) return denied;
    // The host may read these as the method (many APIs do): the one authorized must stand.
    if (head.forwardingFields === true && this.#authz.has(d.service)) {
      for (const f of METHOD_OVERRIDE_FIELDS) markHopByHop(head, f);
    }
    // The app's Host names this proxy's listener or the host: each endpoint sends its own.
    markHopByHop(head, "host");
    const target = originForm(head.target);
    if (target !== null) {
      head.target = target;
      head.targetRewritten = true;
    }
    return d.decide(head, caller);
  }

  /**
   * The answer to a request for `host` that names no registered destination in
   * `registered_only` mode: 403 `egress_denied`, and an audit line like a denied call's.
   */
  refuse(host: string, head: RequestHead, caller: string): ProxyError {
    this.#audit.info("authz", {
      ...auditRecord({
        caller: this.#callerId(caller),
        service: host,
        method: head.method,
        path: head.target,
        decision: { allowed: false, reason: "unregistered_destination", rule: null },
      }),
    });
    return new ProxyError(
      403,
      "egress_denied",
      `egress to ${host} refused: it is neither a mesh service nor an ExternalService host ` +
        "(egress: registered_only)",
      "x-skein-denied: unregistered_destination\r\n",
    );
  }

  /** Runs periodic work (outlier detection intervals). */
  tick(): void {
    for (const x of this.#externals.values()) x.d.tick();
  }

  /**
   * Per-destination state for `/endpoints`: each host says where its trust comes from instead
   * of carrying a CA bundle's text (it crosses from worker threads and would repeat per host).
   */
  stats(): DestinationStats[] {
    return [...this.#externals.values()].map((x) => {
      const s = x.d.stats();
      const ca = x.entry.caFile ?? "built-in roots";
      return {
        ...s,
        endpoints: s.endpoints.map((e) => {
          const { origin, ...endpoint } = e.endpoint as typeof e.endpoint & { origin?: unknown };
          return origin === undefined ? e : { ...e, endpoint: { ...endpoint, ca_file: ca } };
        }),
      };
    });
  }

  /** The effective policies, for `/config`. */
  policies(out: Record<string, unknown>): void {
    for (const [n, x] of this.#externals) out[n] = x.d.policy;
  }

  #callerId(service: string): string | null {
    const td = this.#o.trustDomain;
    if (td === undefined) return null;
    let id = this.#callers.get(service);
    if (id === undefined) {
      id = serviceSpiffeId(td, service);
      this.#callers.set(service, id);
    }
    return id;
  }
}
