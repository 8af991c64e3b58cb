/**
 * `Authorization` enforcement on the proxy's `inbound` listener: the policies of the local
 * services, compiled once per catalog change, checked against every request before it is
 * routed to the app.
 *
 * - A local service without an `Authorization` resource is open to every caller, as before
 *   policies existed (with mTLS, every caller is still an authenticated mesh member). The
 *   check is then one map lookup.
 * - With a resource, a caller without a verified identity (plaintext mesh) is denied
 *   `no_identity`.
 * - A denial is answered `403` with `x-skein-error: denied`, `x-skein-denied: <reason>` and
 *   `x-skein-proxy`; the app never sees the request.
 * - An allowed request goes on with the normalized path it was authorized for (the query is
 *   kept), so the app cannot be reached through `/a/../admin` with a policy about `/a/*`.
 * - Opaque TCP tunnels (`Upgrade: skein-tcp`) carry no visible method or path: see
 *   `evaluateTcp` in `mesh/authz` (allowed only if every request would be).
 * - Audit: every denial, and allows of resources with `audit_allowed: true`, are logged at
 *   info with `component=audit type=authz` and the fields of `auditRecord`.
 * @module
 */
import type { Logger } from "../../common/log.ts";
import type { Resource } from "../../config/mod.ts";
import type { SpiffeId } from "../../common/tls/mod.ts";
import type { RequestHead } from "../http1/mod.ts";
import {
  callerFromUri,
  compileAuthorization,
  type CompiledAuthorization,
  type Decision,
  evaluateNormalized,
  evaluateTcp,
  unreadableAuthorization,
} from "./authz.ts";
import { normalizePath } from "./path.ts";
import { auditRecord, DENIED_HEADER, shouldAudit } from "./response.ts";
import { ProxyError } from "../forward/mod.ts";

/** Most distinct caller ids kept parsed; beyond it the cache starts over. */
export const MAX_CALLER_CACHE = 1024;

/** Method recorded in audit lines for opaque TCP tunnels. */
export const TCP_AUDIT_METHOD = "TCP";

/** Options of {@linkcode InboundAuthz}. */
export interface InboundAuthzOptions {
  /** The services behind `inbound`: only their resources are compiled. */
  services: readonly string[];
  /** The mesh's trust domain (plain service names in `from` mean this domain). */
  trustDomain: string | undefined;
  /** The proxy logger; audit lines go to it with `component=audit`. */
  logger: Logger;
}

/** The `source` of an entry made for an unreadable resource. */
const _UNREADABLE = "\u0000unreadable";

interface _Entry {
  /** The resource as JSON, to skip recompiling an unchanged one. */
  readonly source: string;
  readonly policy: CompiledAuthorization;
}

/** The inbound policies of one proxy. */
export class InboundAuthz {
  #services: ReadonlySet<string>;
  readonly #trustDomain: string;
  readonly #log: Logger;
  readonly #audit: Logger;
  #entries = new Map<string, _Entry>();
  readonly #callers = new Map<string, SpiffeId | null>();

  /** Creates the enforcer with no policy (everything allowed) until {@linkcode apply}. */
  constructor(opts: InboundAuthzOptions) {
    this.#services = new Set(opts.services);
    // Without mTLS there is no caller identity, so the trust domain never matters then.
    this.#trustDomain = opts.trustDomain ?? "";
    this.#log = opts.logger;
    this.#audit = opts.logger.with({ component: "audit" });
  }

  /**
   * The services behind `inbound` after a configuration reload; their policies are compiled
   * at the next {@linkcode apply}, which the caller makes at once with the catalog in use.
   */
  setServices(services: readonly string[]): void {
    this.#services = new Set(services);
  }

  /**
   * Takes the resources of a new catalog: compiles the `Authorization` of each local service,
   * reusing the compiled form of a resource that did not change. A local service in
   * `unreadable` (its `Authorization` could not be read) gets a policy denying every call.
   * Returns whether any service's policy changed (open tunnels are then checked again).
   */
  apply(resources: readonly Resource[], unreadable: readonly string[] = []): boolean {
    const next = new Map<string, _Entry>();
    for (const service of unreadable) {
      if (!this.#services.has(service) || next.has(service)) continue;
      const old = this.#entries.get(service);
      next.set(
        service,
        old?.source === _UNREADABLE ? old : {
          source: _UNREADABLE,
          policy: unreadableAuthorization(service),
        },
      );
      if (old?.source !== _UNREADABLE) {
        this.#log.error("authorization policy unreadable: denying every call to the service", {
          service,
        });
      }
    }
    for (const r of resources) {
      if (r.kind !== "Authorization" || !this.#services.has(r.service)) continue;
      if (next.has(r.service)) continue; // unreadable above: one resource per service
      const source = JSON.stringify(r);
      const old = this.#entries.get(r.service);
      if (old !== undefined && old.source === source) {
        next.set(r.service, old);
        continue;
      }
      next.set(r.service, {
        source,
        policy: compileAuthorization(r, { trustDomain: this.#trustDomain }),
      });
      this.#log.info("authorization policy applied", {
        service: r.service,
        default: r.default,
        allow_rules: r.allow.length,
        deny_rules: r.deny.length,
      });
    }
    let changed = next.size !== this.#entries.size;
    for (const [s, e] of this.#entries) {
      if (!next.has(s)) this.#log.info("authorization policy removed", { service: s });
      if (next.get(s) !== e) changed = true;
    }
    this.#entries = next;
    return changed;
  }

  /** Whether a local service has an `Authorization` resource. */
  has(service: string): boolean {
    return this.#entries.has(service);
  }

  /**
   * Checks one HTTP request for `service`. Returns the 403 to answer, or null to go on; when
   * allowed and normalization changed the path, `head.target` is replaced by the normalized
   * path (plus the original query) and marked `targetRewritten`.
   */
  checkHttp(service: string, head: RequestHead, caller: string | null): ProxyError | null {
    const e = this.#entries.get(service);
    if (e === undefined) return null;
    const target = head.target;
    const path = normalizePath(target);
    const id = this.#caller(caller);
    const d = evaluateNormalized(e.policy, id, head.method, path);
    if (shouldAudit(e.policy, d)) this.#record(service, caller, head.method, path ?? target, d);
    if (!d.allowed) return _denied(d);
    // normalizePath returns its input when there is nothing to change: no work then.
    if (path !== null && path !== target) {
      const want = path + _queryOf(target);
      if (want !== target) {
        head.target = want;
        head.targetRewritten = true;
      }
    }
    return null;
  }

  /** Checks one opaque TCP tunnel for `service`; returns the 403 to answer, or null. */
  checkTcp(service: string, caller: string | null): ProxyError | null {
    const e = this.#entries.get(service);
    if (e === undefined) return null;
    const d = evaluateTcp(e.policy, this.#caller(caller));
    if (shouldAudit(e.policy, d)) this.#record(service, caller, TCP_AUDIT_METHOD, "", d);
    return d.allowed ? null : _denied(d);
  }

  /**
   * Whether an open tunnel of `caller` to `service` is still allowed under the current
   * policies; a refusal is audited and logged, since the connection is about to be closed.
   */
  tcpStillAllowed(service: string, caller: string | null): boolean {
    if (this.checkTcp(service, caller) === null) return true;
    this.#log.warn("closing a TCP tunnel the authorization policy no longer allows", {
      service,
      caller,
    });
    return false;
  }

  /**
   * Whether an upgraded HTTP connection (a WebSocket) opened by `caller` with `method` and the
   * authorized `path` is still allowed; a refusal is audited and logged.
   */
  upgradeStillAllowed(
    service: string,
    caller: string | null,
    method: string,
    path: string,
  ): boolean {
    const e = this.#entries.get(service);
    if (e === undefined) return true;
    const p = normalizePath(path);
    const d = evaluateNormalized(e.policy, this.#caller(caller), method, p);
    if (shouldAudit(e.policy, d)) this.#record(service, caller, method, p ?? path, d);
    if (d.allowed) return true;
    this.#log.warn("closing an upgraded connection the authorization policy no longer allows", {
      service,
      caller,
      method,
      path: p ?? path,
    });
    return false;
  }

  #caller(uri: string | null): SpiffeId | null {
    if (uri === null) return null;
    let id = this.#callers.get(uri);
    if (id === undefined) {
      if (this.#callers.size >= MAX_CALLER_CACHE) this.#callers.clear();
      id = callerFromUri(uri);
      this.#callers.set(uri, id);
    }
    return id;
  }

  #record(service: string, caller: string | null, method: string, path: string, d: Decision) {
    this.#audit.info("authz", { ...auditRecord({ caller, service, method, path, decision: d }) });
  }
}

/** The query (with its `?`) of a target, without any fragment; "" when none. */
function _queryOf(target: string): string {
  const q = target.indexOf("?");
  if (q < 0) return "";
  const h = target.indexOf("#", q);
  return h < 0 ? target.slice(q) : target.slice(q, h);
}

function _denied(d: Decision): ProxyError {
  return new ProxyError(
    403,
    "denied",
    `denied by policy: ${d.reason}${d.rule !== null ? ` (${d.rule})` : ""}`,
    `${DENIED_HEADER}: ${d.reason}\r\n`,
  );
}
