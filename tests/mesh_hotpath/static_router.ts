/**
 * A router with a fixed endpoint list, round-robin and bounded retries: the policy-free router
 * the forwarder's tests and the forwarder benchmark run it with, so they need no catalog.
 * @module
 */
import type { RequestHead } from "../../mesh/http1/mod.ts";
import {
  type Endpoint,
  type ListenerInfo,
  type Outcome,
  ProxyError,
  type RouteDecision,
  type Router,
} from "../../mesh/forward/mod.ts";

/** Options for {@linkcode staticRouter}. */
export interface StaticRouterOptions {
  /** Cluster name used in errors. @default "static" */
  cluster?: string;
  /** Endpoints, used round-robin; empty means every request gets 503. */
  endpoints: Endpoint[];
  /** Overall timeout until the response head, ms; 0 = none. @default 0 */
  timeoutMs?: number;
  /** Per-attempt timeout, ms; 0 = none. @default 0 */
  perTryTimeoutMs?: number;
  /** Retries after the first attempt (on connect failure, reset, timeout, 5xx). @default 0 */
  retries?: number;
  /** Observes every attempt's outcome (for tests). */
  onResult?: (ep: Endpoint, outcome: Outcome, latencyMs: number) => void;
  /** Header lines added to every forwarded request (see `RouteDecision`). */
  extraRequestHeaders?: string;
  /** Observes the end of every exchange (see `RouteDecision.onDone`). */
  onDone?: (status: number) => void;
}

/** A fixed endpoint list with round-robin and simple retries; for tests and benchmarks. */
export function staticRouter(opts: StaticRouterOptions): Router {
  const cluster = opts.cluster ?? "static";
  const eps = opts.endpoints;
  const retries = opts.retries ?? 0;
  let next = 0;
  const decision: RouteDecision = {
    cluster,
    timeoutMs: opts.timeoutMs ?? 0,
    perTryTimeoutMs: opts.perTryTimeoutMs ?? 0,
    extraRequestHeaders: opts.extraRequestHeaders,
    onDone: opts.onDone,
    pick(_attempt: number, exclude: ReadonlySet<string>): Endpoint | null {
      for (let i = 0; i < eps.length; i++) {
        const ep = eps[next++ % eps.length]!;
        if (!exclude.has(ep.key)) return ep;
      }
      // Every endpoint was tried: allow a repeat rather than failing a retry outright.
      return exclude.size > 0 && eps.length > 0 ? eps[next++ % eps.length]! : null;
    },
    retry(attempt: number, outcome: Outcome): number | null {
      if (attempt >= retries) return null;
      if (outcome.kind === "response" && outcome.status < 500) return null;
      return 0;
    },
    onResult(ep: Endpoint, outcome: Outcome, latencyMs: number): void {
      opts.onResult?.(ep, outcome, latencyMs);
    },
  };
  return {
    route(_head: RequestHead, _listener: ListenerInfo): RouteDecision | ProxyError {
      if (eps.length === 0) {
        return new ProxyError(503, "no_endpoint", `no healthy endpoint for ${cluster}`);
      }
      return decision;
    },
  };
}

/** Parses "host:port" into an endpoint keyed by the same string. */
export function endpointOf(hostPort: string): Endpoint {
  const i = hostPort.lastIndexOf(":");
  const port = Number(hostPort.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new TypeError(`expected host:port, got "${hostPort}"`);
  }
  return { key: hostPort, hostname: hostPort.slice(0, i), port };
}
