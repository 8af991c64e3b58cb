/**
 * The proxy's {@linkcode Router} and {@linkcode TcpRouter}: which destination a request or
 * connection is for, by the listener it arrived on.
 *
 * - an upstream listener (`upstream:<service>`) serves exactly that service;
 * - the `http_proxy` listener reads the service from `Host` (with or without a port);
 * - the `inbound` listener forwards to a local app: the one named by `x-skein-destination`,
 *   else by `Host`, else the only one this proxy fronts, once the app's `Authorization`
 *   resource allows the caller (see `mesh/authz/inbound.ts`).
 * @module
 */
import type { Logger } from "../../common/log.ts";
import type { ClientInfo, ListenerInfo, RouteDecision, Router } from "../forward/mod.ts";
import { serviceSpiffeId } from "../tls/mod.ts";
import { ProxyError } from "../forward/mod.ts";
import { headerValue, markHopByHop, type RequestHead } from "../http1/mod.ts";
import { TCP_TUNNEL_UPGRADE, type TcpRouter } from "../tcp/mod.ts";
import { DESTINATION_HEADER } from "../http1/mesh_headers.ts";
// Types only: the catalog arrives read (prepareCatalog), so a worker loads no schema for it.
import type { Catalog, PreparedCatalog } from "../discovery/catalog.ts";
import {
  Destination,
  type DestinationDeps,
  type DestinationStats,
  type Policy,
  type Route,
} from "./destination.ts";
import { localAppPolicy } from "./policy_defaults.ts";
import { upstreamKey } from "../../config/upstream_key.ts";
import { InboundAuthz } from "../authz/mod.ts";
import type { CallInfo, Recorder } from "../observe/recorder.ts";
import { InboundRateLimits, type RateLimitSpec } from "./inbound_rate_limit.ts";
import {
  capabilitiesOfKey,
  CAPABILITY_HEADER,
  capableInstances,
  isCapabilityKey,
  keyOfHeader,
} from "./capability.ts";
import { sharedNowNs } from "../resilience/shared_rate.ts";
import { EgressRoutes } from "./egress_routes.ts";
import { ingressListenerName, IngressTable } from "../ingress/mod.ts";

/** Listener name of the inbound listener. */
export const INBOUND_LISTENER = "inbound";
/** Listener name of the `http_proxy` listener. */
export const HTTP_PROXY_LISTENER = "http_proxy";
/** Prefix of upstream listener names (`upstream:ledger`). */
export const UPSTREAM_LISTENER_PREFIX = "upstream:";
/** Most destinations created on demand through `http_proxy`; beyond it, 503. */
export const MAX_DESTINATIONS = 4096;

/** A local app this proxy fronts. */
export interface LocalApp {
  /** Service name. */
  name: string;
  /** Port of the app on 127.0.0.1. */
  port: number;
}

/** An upstream listener: the service it calls and the local service it calls for. */
export interface UpstreamRef {
  /** The destination service. */
  service: string;
  /** The local service the calls are made for (the `source` label). @default the router's */
  caller?: string;
}

/** The listener name of an upstream (`upstream:ledger`, `upstream:ledger@billing`). */
export function upstreamListenerName(u: UpstreamRef): string {
  return UPSTREAM_LISTENER_PREFIX + upstreamKey(u);
}

/** Distinct `x-skein-capability` values whose destination key the router remembers. */
const MAX_CACHED_CAPABILITY_VALUES = 256;

/** Options of {@linkcode MeshRouter}. */
export interface MeshRouterOptions extends DestinationDeps {
  /** The upstream listeners; their destinations are created eagerly. */
  upstreams: readonly UpstreamRef[];
  /** The local apps behind `inbound`. */
  locals: readonly LocalApp[];
  /** Where inbound `Upgrade: skein-tcp` requests for a local service go (its tunnel bridge port), if anywhere. */
  tunnelPort?: (service: string) => number | null;
  /** Structured logger. */
  logger: Logger;
  /** With mTLS between proxies: the trust domain whose `svc/<service>` ids servers must show. */
  trustDomain?: string;
  /** Tracing and access logging (`mesh/observe`), when either is configured. */
  recorder?: Recorder;
  /** proxy.yaml `egress`: `registered_only` refuses unknown hosts on `http_proxy`. */
  egress?: "open" | "registered_only";
  /** The `ingress` listeners, in order: their routes or HTTPS redirect. @default none */
  ingress?: readonly ConstructorParameters<typeof IngressTable>[0][];
}

/** Routes by listener, `Host` and the catalog. */
export class MeshRouter implements Router {
  readonly #o: MeshRouterOptions;
  readonly #outbound = new Map<string, Destination>();
  /** Reach probes in flight, by `service|endpoint`. */
  readonly #probing = new Set<string>();
  readonly #inbound = new Map<string, Destination>();
  /** The app port each local destination sends to. */
  readonly #localPorts = new Map<string, number>();
  /** Upstream listener name → its destination and the `source` label its calls carry. */
  readonly #upstreams = new Map<string, { d: Destination; source: string | undefined }>();
  #catalog: Catalog = { index: 0, services: {}, resources: [], trust: { roots: [], revoked: [] } };
  /** The catalog's resources as read for the router (kept for a reload's new local apps). */
  #prepared: Pick<PreparedCatalog, "resources" | "unreadableAuthorizations"> = {
    resources: [],
    unreadableAuthorizations: [],
  };
  #policies = new Map<string, Policy>();
  #routes = new Map<string, Route>();
  #haveCatalog = false;
  readonly #authz: InboundAuthz;
  readonly #rateLimits: InboundRateLimits;
  /** `x-skein-capability` values seen → the destination key they ask for (or why not). */
  readonly #capabilityKeys = new Map<string, string | ProxyError>();
  /** The `ExternalService` destinations (`egress_routes.ts`). */
  readonly #egress: EgressRoutes;
  /** Ingress listener name → its routing. */
  readonly #ingress = new Map<string, IngressTable>();

  /** Creates the router with the upstream and local destinations. */
  constructor(opts: MeshRouterOptions) {
    this.#o = opts;
    this.#authz = new InboundAuthz({
      services: opts.locals.map((l) => l.name),
      trustDomain: opts.trustDomain,
      logger: opts.logger,
    });
    this.#rateLimits = new InboundRateLimits(opts.limits.rates, sharedNowNs);
    this.#egress = new EgressRoutes({
      deps: opts,
      trustDomain: opts.trustDomain,
      mode: opts.egress ?? "open",
      isMeshService: (name) => Object.hasOwn(this.#catalog.services, name),
    });
    for (const u of opts.upstreams) {
      this.#upstreams.set(upstreamListenerName(u), {
        d: this.#destination(u.service),
        source: u.caller,
      });
    }
    for (const l of opts.locals) this.#setLocal(l);
    (opts.ingress ?? []).forEach((l, i) => {
      const t = new IngressTable(l);
      this.#ingress.set(ingressListenerName(i), t);
      // Created with the listener, like an upstream's: ingress routes are configuration.
      for (const svc of t.routes.services()) this.#destination(svc);
    });
  }

  #setLocal(l: LocalApp): void {
    if (this.#localPorts.get(l.name) === l.port) return;
    const d = new Destination(l.name, { ...this.#o, source: "unknown" }, {
      policy: localAppPolicy(l.name),
      timeouts: false,
      routeLabel: "inbound",
      limitKey: `inbound:${l.name}`,
    });
    d.setEndpoints([{
      key: `127.0.0.1:${l.port}`,
      hostname: "127.0.0.1",
      port: l.port,
      weight: 1,
      zone: "",
    }]);
    this.#inbound.set(l.name, d);
    this.#localPorts.set(l.name, l.port);
  }

  /**
   * The local apps behind `inbound` after a configuration reload: new ones are routed (with
   * their `Authorization` from the catalog in use), gone ones answer 404 `no_route`. Returns
   * whether an inbound Authorization changed (open upgraded connections need a new check).
   */
  setLocals(locals: readonly LocalApp[]): boolean {
    const names = new Set(locals.map((l) => l.name));
    for (const name of [...this.#inbound.keys()]) {
      if (names.has(name)) continue;
      this.#inbound.delete(name);
      this.#localPorts.delete(name);
    }
    for (const l of locals) this.#setLocal(l);
    this.#authz.setServices([...names]);
    const { resources, unreadableAuthorizations } = this.#prepared;
    // New apps get their RateLimit now, not at the next catalog update.
    this.#applyRateLimits(resources);
    return this.#authz.apply(resources, unreadableAuthorizations);
  }

  /** Applies the RateLimit resources among `resources` to the local apps. */
  #applyRateLimits(resources: PreparedCatalog["resources"]): void {
    const c = this.#catalog;
    const specs: RateLimitSpec[] = [];
    for (const r of resources) if (r.kind === "RateLimit") specs.push(r);
    this.#rateLimits.apply(
      specs,
      [...this.#inbound.keys()],
      (svc) =>
        Object.hasOwn(c.services, svc)
          ? c.services[svc]!.filter((i) => i.health === "passing").length
          : 0,
    );
  }

  /** Whether a catalog (from the control plane or the cache) has been applied. */
  get haveCatalog(): boolean {
    return this.#haveCatalog;
  }

  /**
   * Applies a new catalog: endpoints, Policy, Route and Authorization resources. Returns
   * whether an inbound Authorization changed (open upgraded connections need a new check).
   */
  applyCatalog(p: PreparedCatalog): boolean {
    const { catalog: c, resources, unreadableAuthorizations } = p;
    this.#catalog = c;
    this.#prepared = p;
    this.#haveCatalog = true;
    const policies = new Map<string, Policy>();
    const routes = new Map<string, Route>();
    for (const r of resources) {
      if (r.kind === "Policy") policies.set(r.service, r);
      else if (r.kind === "Route") routes.set(r.service, r);
    }
    this.#applyRateLimits(resources);
    const authzChanged = this.#authz.apply(resources, unreadableAuthorizations);
    this.#policies = policies;
    this.#routes = routes;
    for (const [name, d] of this.#outbound) this.#refresh(name, d);
    this.#egress.apply(resources, unreadableAuthorizations);
    return authzChanged;
  }

  /** Runs periodic work (outlier detection intervals). */
  tick(): void {
    for (const d of this.#outbound.values()) d.tick();
    this.#egress.tick();
  }

  /**
   * Tries `connects` on every endpoint ejected for being unreachable (one try per endpoint at a
   * time) and brings back the ones it reaches, so a healed host does not wait out its ejection.
   */
  probeEjected(connects: (hostname: string, port: number) => Promise<boolean>): void {
    for (const d of this.#outbound.values()) {
      for (const e of d.unreachableEjected()) {
        const k = `${d.service}|${e.key}`;
        if (this.#probing.has(k)) continue;
        this.#probing.add(k);
        void connects(e.hostname, e.port)
          .then((ok) => {
            if (ok) d.reachable(e.key);
          }, () => {})
          .finally(() => this.#probing.delete(k));
      }
    }
  }

  /** Per-destination state for `/endpoints`. */
  stats(): { outbound: DestinationStats[]; inbound: DestinationStats[] } {
    return {
      // Not an upstream's mesh destination that an ExternalService stands in for.
      outbound: [...this.#outbound.values()].filter((d) => !this.#egress.isExternal(d.service))
        .map((d) => d.stats()).concat(this.#egress.stats()),
      inbound: [...this.#inbound.values()].map((d) => d.stats()),
    };
  }

  /** The effective policies of the outbound destinations, for `/config`. */
  policies(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [n, d] of this.#outbound) out[n] = d.policy;
    this.#egress.policies(out);
    return out;
  }

  /** Routes one HTTP request (through the record layer when one is configured). */
  route(
    head: RequestHead,
    listener: ListenerInfo,
    client?: ClientInfo,
  ): RouteDecision | ProxyError {
    const d = this.#route(head, listener, client);
    const rec = this.#o.recorder;
    return rec === undefined ? d : rec.record(d, head, listener, client, this);
  }

  /**
   * Who calls whom for the record layer (asked only for requests it records); the peer's
   * service label and identity only `withIdentity` (spans), an access line needs neither.
   */
  callInfo(
    d: RouteDecision | ProxyError,
    head: RequestHead,
    listener: ListenerInfo,
    client: ClientInfo | undefined,
    withIdentity = true,
  ): CallInfo {
    if (listener.name === INBOUND_LISTENER) {
      const caller = client?.identity ?? null;
      return {
        caller,
        destination: d instanceof ProxyError
          ? headerValue(head, DESTINATION_HEADER) ?? hostService(head.host) ?? "unknown"
          : d.cluster,
        peerService: caller === null ? "unknown" : withIdentity ? sourceLabel(caller) : "",
        peerIdentity: caller,
      };
    }
    const svc = d instanceof ProxyError ? hostService(head.host) ?? listener.name : d.cluster;
    return {
      caller: this.#upstreams.get(listener.name)?.source ?? this.#o.source,
      destination: svc,
      peerService: svc,
      // A host outside the mesh has no mesh identity.
      peerIdentity: !withIdentity || this.#o.trustDomain === undefined ||
          this.#egress.isExternal(svc)
        ? null
        : serviceSpiffeId(this.#o.trustDomain, svc),
    };
  }

  #route(
    head: RequestHead,
    listener: ListenerInfo,
    client?: ClientInfo,
  ): RouteDecision | ProxyError {
    const name = listener.name;
    if (name === INBOUND_LISTENER) return this.#routeInbound(head, client?.identity ?? null);
    _dropDestinationHeader(head);
    if (name === HTTP_PROXY_LISTENER) {
      // An absolute-form target names the destination; Host is then ignored (RFC 9112 3.2.2).
      const abs = absoluteFormHost(head.target);
      if (abs === "") {
        return new ProxyError(400, "bad_request", "absolute-form target without a host");
      }
      const svc = hostService(abs ?? head.host);
      if (svc === null) {
        return new ProxyError(400, "bad_request", "http_proxy needs a Host naming a service");
      }
      const asked = this.#askedCapabilities(head);
      if (asked !== null) return asked instanceof ProxyError ? asked : asked.decide(head);
      const d = this.#outbound.get(svc) ?? this.#onDemand(svc);
      if (d instanceof ProxyError) {
        // Not a mesh service: an ExternalService's host or name, or refused per `egress`.
        const authority = absoluteFormHost(head.target) ?? head.host ?? "";
        return this.#haveCatalog ? this.#egress.byHost(svc, authority, head, this.#o.source, d) : d;
      }
      return d.decide(head);
    }
    const u = this.#upstreams.get(name);
    if (u === undefined) {
      const g = this.#ingress.get(name);
      if (g === undefined) return new ProxyError(404, "no_route", `no route for listener ${name}`);
      // By host and path; the gateway calls as its own identity (the router's source).
      const svc = g.decide(head);
      return svc instanceof ProxyError ? svc : this.#destination(svc).decide(head);
    }
    const asked = this.#askedCapabilities(head);
    if (asked !== null) {
      return asked instanceof ProxyError ? asked : asked.decide(head, u.source);
    }
    const ext = this.#egress.size > 0 ? this.#egress.named(u.d.service) : undefined;
    if (ext !== undefined) return this.#egress.decide(ext, head, u.source ?? this.#o.source);
    return u.d.decide(head, u.source);
  }

  /** Routes the calls of an upstream listener opened by a configuration reload. */
  addUpstream(u: UpstreamRef): void {
    this.#upstreams.set(upstreamListenerName(u), {
      d: this.#destination(u.service),
      source: u.caller,
    });
  }

  /** Stops routing an upstream listener closed (and drained) by a configuration reload. */
  removeUpstream(u: UpstreamRef): void {
    this.#upstreams.delete(upstreamListenerName(u));
  }

  /** The destination of the capabilities a request asks for by header; null when it asks none. */
  #askedCapabilities(head: RequestHead): Destination | ProxyError | null {
    // The parser flags the field, so the usual request scans no header for it.
    if (head.asksCapability !== true) return null;
    const v = headerValue(head, CAPABILITY_HEADER);
    if (v === null) return null;
    let key = this.#capabilityKeys.get(v);
    if (key === undefined) {
      key = keyOfHeader(v);
      // Bounded: callers choose the values; a full cache starts over.
      if (this.#capabilityKeys.size >= MAX_CACHED_CAPABILITY_VALUES) this.#capabilityKeys.clear();
      this.#capabilityKeys.set(v, key);
    }
    if (key instanceof ProxyError) return key;
    const d = this.#outbound.get(key);
    if (d !== undefined) return d;
    if (this.#outbound.size >= MAX_DESTINATIONS) {
      return new ProxyError(503, "overloaded", `more than ${MAX_DESTINATIONS} destinations`);
    }
    return this.#destination(key);
  }

  /** Routes one opaque TCP connection accepted on an upstream listener. */
  routeTcp(listener: ListenerInfo): RouteDecision | ProxyError {
    const u = this.#upstreams.get(listener.name);
    if (u === undefined) return new ProxyError(404, "no_route", `no route for ${listener.name}`);
    const refused = this.#egress.size > 0 ? this.#egress.refuseTcp(u.d.service) : null;
    if (refused !== null) return refused;
    const d = u.d.decideTcp();
    const rec = this.#o.recorder;
    if (rec === undefined || d instanceof ProxyError) return d;
    return rec.wrapTcp(d, u.source ?? this.#o.source);
  }

  /** This router as a {@linkcode TcpRouter}, for the opaque TCP upstream listeners. */
  tcp(): TcpRouter {
    return { route: (listener) => this.routeTcp(listener) };
  }

  #routeInbound(head: RequestHead, caller: string | null): RouteDecision | ProxyError {
    const sent = headerValue(head, DESTINATION_HEADER);
    const named = sent ?? hostService(head.host);
    let d = named !== null ? this.#inbound.get(named) : undefined;
    if (d === undefined && sent !== null) {
      // A calling proxy named a service not fronted here (a reload removed it): the one app
      // left is not it. "Reached no app" so the caller's proxy retries another endpoint.
      return new ProxyError(503, "no_endpoint", `this proxy does not front ${sent}`);
    }
    if (d === undefined && this.#inbound.size === 1) d = this.#inbound.values().next().value;
    if (d === undefined) {
      return new ProxyError(
        404,
        "no_route",
        `this proxy fronts ${
          [...this.#inbound.keys()].join(", ") || "no service"
        }; name one in ${DESTINATION_HEADER}`,
      );
    }
    const up = head.upgrade ? headerValue(head, "upgrade") : null;
    if (up !== null && up.toLowerCase() === TCP_TUNNEL_UPGRADE) {
      const port = this.#o.tunnelPort?.(d.service) ?? null;
      if (port === null) return new ProxyError(404, "no_route", "no TCP tunnel on this proxy");
      const denied = this.#authz.checkTcp(d.service, caller);
      if (denied !== null) return denied;
      // Each tunnel opened takes a token, like a request: a RateLimit bounds connections too.
      const limitedTcp = this.#rateLimits.check(d.service, caller, head);
      if (limitedTcp !== null) {
        this.#o.metrics.rateLimited.labels(d.service).inc();
        return limitedTcp;
      }
      const service = d.service;
      const tunnel = _tunnelDecision(service, port);
      tunnel.stillAllowed = () => this.#authz.tcpStillAllowed(service, caller);
      return tunnel;
    }
    const denied = this.#authz.checkHttp(d.service, head, caller);
    if (denied !== null) return denied;
    const limited = this.#rateLimits.check(d.service, caller, head);
    if (limited !== null) {
      this.#o.metrics.rateLimited.labels(d.service).inc();
      return limited;
    }
    const decision = d.decide(head, caller === null ? undefined : sourceLabel(caller));
    if (head.upgrade && !(decision instanceof ProxyError)) {
      // Kept for as long as the connection is open: checked again when policies change.
      const { service } = d;
      const method = head.method;
      const path = head.target;
      decision.stillAllowed = () => this.#authz.upgradeStillAllowed(service, caller, method, path);
    }
    return decision;
  }

  #onDemand(svc: string): Destination | ProxyError {
    // Own names only: `in` also finds `constructor`, `toString`... of every object.
    if (!Object.hasOwn(this.#catalog.services, svc)) {
      return new ProxyError(
        this.#haveCatalog ? 404 : 503,
        this.#haveCatalog ? "no_route" : "no_endpoint",
        this.#haveCatalog
          ? `no service named ${svc} in the catalog`
          : `no catalog yet; cannot route to ${svc}`,
      );
    }
    if (this.#outbound.size >= MAX_DESTINATIONS) {
      return new ProxyError(503, "overloaded", `more than ${MAX_DESTINATIONS} destinations`);
    }
    return this.#destination(svc);
  }

  #destination(svc: string): Destination {
    let d = this.#outbound.get(svc);
    if (d === undefined && isCapabilityKey(svc)) {
      // Endpoints of several services: each carries its own identity and destination header.
      d = new Destination(svc, this.#o, { limitKey: `outbound:${svc}`, capabilities: true });
      this.#refresh(svc, d);
      this.#outbound.set(svc, d);
    }
    if (d === undefined) {
      d = new Destination(svc, this.#o, {
        policy: this.#policies.get(svc),
        limitKey: `outbound:${svc}`,
        // The remote inbound picks its local app by this header when it fronts several.
        extraRequestHeaders: `${DESTINATION_HEADER}: ${svc}\r\n`,
        peerIdentity: this.#o.trustDomain === undefined
          ? undefined
          : serviceSpiffeId(this.#o.trustDomain, svc),
        resolve: (other) => {
          const o = this.#outbound.get(other) ?? this.#onDemand(other);
          return o instanceof ProxyError ? null : o;
        },
      });
      // Refreshed before it is kept, so a failure cannot leave a broken destination behind.
      this.#refresh(svc, d);
      this.#outbound.set(svc, d);
    }
    return d;
  }

  #refresh(name: string, d: Destination): void {
    const services = this.#catalog.services;
    if (isCapabilityKey(name)) {
      const td = this.#o.trustDomain;
      d.setCapableInstances(
        capableInstances(services, capabilitiesOfKey(name)),
        td === undefined ? undefined : (svc) => serviceSpiffeId(td, svc),
      );
      return;
    }
    d.setPolicy(this.#policies.get(name));
    d.setRoute(this.#routes.get(name));
    d.setInstances(Object.hasOwn(services, name) ? services[name]! : []);
  }
}

/**
 * The `source` label for a verified caller: the service name for `spiffe://<td>/svc/<name>`
 * and `gateway/<name>` for a gateway (the labels the caller's own proxy uses for itself), the
 * whole id otherwise.
 */
export function sourceLabel(spiffeId: string): string {
  // Asked once per inbound request, about a handful of callers: remember the answers.
  let label = _sourceLabels.get(spiffeId);
  if (label === undefined) {
    const m = /^spiffe:\/\/[^/]+\/(svc|gateway)\/([^/]+)$/.exec(spiffeId);
    label = m ? (m[1] === "svc" ? m[2]! : `gateway/${m[2]!}`) : spiffeId;
    if (_sourceLabels.size >= MAX_REMEMBERED_SOURCE_LABELS) _sourceLabels.clear();
    _sourceLabels.set(spiffeId, label);
  }
  return label;
}

/** Most caller ids whose label {@linkcode sourceLabel} remembers (then it starts over). */
const MAX_REMEMBERED_SOURCE_LABELS = 1024;
const _sourceLabels = new Map<string, string>();

/** The service named by a `Host` value: the name without port, lower-cased; null if none. */
export function hostService(host: string | null): string | null {
  if (host === null) return null;
  let h = host.trim();
  if (h.startsWith("[")) return null; // an IP literal names no service
  const colon = h.lastIndexOf(":");
  if (colon >= 0) h = h.slice(0, colon);
  return h === "" ? null : h.toLowerCase();
}

/**
 * The authority of an absolute-form target (`http://ledger:80/x` gives `ledger:80`), "" when
 * it has none, or null for an origin-form target (the usual case: one character compared).
 */
export function absoluteFormHost(target: string): string | null {
  if (target.charCodeAt(0) === 47) return null;
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(target);
  if (m === null) return null;
  // Userinfo names no host: `http://evil@ledger/` is ledger.
  const at = m[1]!.lastIndexOf("@");
  return at < 0 ? m[1]! : m[1]!.slice(at + 1);
}

/**
 * Marks a caller-supplied `x-skein-destination` as hop-by-hop so the rewriter drops it: only
 * this proxy names the destination, an app cannot steer the remote inbound to another service.
 */
function _dropDestinationHeader(head: RequestHead): void {
  markHopByHop(head, DESTINATION_HEADER);
}

/** A decision that hands an inbound tunnel request to the local TCP bridge. */
function _tunnelDecision(service: string, port: number): RouteDecision {
  const ep = { key: `tunnel:${port}`, hostname: "127.0.0.1", port };
  return {
    cluster: service,
    timeoutMs: 0,
    perTryTimeoutMs: 0,
    pick: (attempt) => (attempt === 0 ? ep : null),
    retry: () => null,
    onResult: () => {},
  };
}
