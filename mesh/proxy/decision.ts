/**
 * One request's plan ({@linkcode RouteDecision}) as a destination makes it: picks endpoints
 * from the balancer the route chose, asks the retry policy and its budget, reports outcomes to
 * the balancer and outlier detection, and finishes the request (breaker slot, metrics).
 * @module
 */
import type { Balancer, Endpoint as BalancedEndpoint } from "../balance/mod.ts";
import type { Endpoint, ExchangeRecord, Outcome, RouteDecision } from "../forward/mod.ts";
import type { RouteMetrics } from "../observe/proxy_metrics.ts";
import { isFailure, type OutlierDetector, type RetryPolicy } from "../resilience/mod.ts";
import type { DestinationDeps, EffectivePolicy } from "./destination_types.ts";
import type { BalancedMirror } from "./mirror_target.ts";
import type { RequestLimit } from "../resilience/shared_limits.ts";

/** What a {@linkcode Decision} needs from the destination that made it. */
export interface DecisionHost {
  /** The service name. */
  readonly service: string;
  /** The policy in effect. */
  readonly policy: EffectivePolicy;
  /** Whether requests get the overall/per-try timeouts. */
  readonly timeouts: boolean;
  /** The proxy around the destination. */
  readonly deps: DestinationDeps;
  /** Header lines added to every forwarded request. */
  readonly extraRequestHeaders: string | undefined;
  /** The breaker's in-flight limit. */
  readonly requests: RequestLimit;
  /** The retry policy and its budget. */
  readonly retryPolicy: RetryPolicy;
  /** Outlier detection. */
  readonly outlier: OutlierDetector;
  /** Whether endpoints carry their own header lines (capability or external endpoints). */
  readonly perEndpointHeaders: boolean;
  /** The header lines of such an endpoint. */
  headerFor(key: string): string | undefined;
}

/**
 * One request's plan. The forwarder reports each try's outcome and asks whether to retry; the
 * request is finished (breaker slot released, final status and whole-exchange latency
 * recorded) in `onDone`, which the forwarder calls exactly once when the response body has
 * passed or the exchange failed.
 */
export class Decision implements RouteDecision {
  /** The destination's name. */
  readonly cluster: string;
  /** Overall budget until the response head, ms (0 = none). */
  readonly timeoutMs: number;
  /** Budget per try, ms (0 = none). */
  readonly perTryTimeoutMs: number;
  /** Header lines of every try (per endpoint when picking by capability). */
  extraRequestHeaders: string | undefined;
  /** See {@linkcode RouteDecision.subset}; set when a Route chose a version. */
  subset: string | undefined = undefined;
  /** See {@linkcode RouteDecision.mirror}; set when a Route mirrors this request. */
  mirror: BalancedMirror | undefined = undefined;
  /** See {@linkcode RouteDecision.delayMs}; set when a Route fault delays this request. */
  delayMs: number | undefined = undefined;
  /** See {@linkcode RouteDecision.stillAllowed}; set by the router for upgrades only. */
  stillAllowed: (() => boolean) | undefined = undefined;
  /** See {@linkcode RouteDecision.recording}; set by the record layer (`mesh/observe`). */
  recording: ExchangeRecord | null = null;
  readonly #dest: DecisionHost;
  readonly #balancer: Balancer;
  readonly #metrics: RouteMetrics;
  readonly #method: string;
  readonly #hashKey: string | undefined;
  readonly #tcp: boolean;
  readonly #started: number;
  /** The endpoint of the try in progress (its balancer in-flight count is held). */
  #picked: BalancedEndpoint | null = null;
  #open = true;
  /** Tries that reported, and the last one's endpoint and outcome (for the record layer). */
  #tries = 0;
  #lastEp: Endpoint | null = null;
  #last: Outcome | null = null;
  /** The line the record layer added to every try (a `traceparent`), if any. */
  #added: string | undefined = undefined;

  /** Plans a request (or, with `tcp`, an opaque connection) over `balancer`. */
  constructor(
    dest: DecisionHost,
    balancer: Balancer,
    metrics: RouteMetrics,
    method: string,
    hashKey: string | undefined,
    tcp: boolean,
  ) {
    this.cluster = dest.service;
    const p = dest.policy;
    this.timeoutMs = dest.timeouts && !tcp ? p.timeout : 0;
    this.perTryTimeoutMs = dest.timeouts && !tcp ? p.retries.per_try_timeout ?? 0 : 0;
    this.extraRequestHeaders = dest.extraRequestHeaders;
    this.#dest = dest;
    this.#balancer = balancer;
    this.#metrics = metrics;
    this.#method = method;
    this.#hashKey = hashKey;
    this.#tcp = tcp;
    this.#started = dest.deps.now();
  }

  /** Picks the endpoint of the next try, avoiding those tried while others are left. */
  pick(_attempt: number, exclude: ReadonlySet<string>): Endpoint | null {
    if (!this.#open) return null;
    let ep = this.#balancer.pick(exclude.size > 0 ? exclude : undefined, this.#hashKey);
    // Every endpoint was tried and the retry policy still allows one more: repeat one rather
    // than failing the retry (the retry policy and its budget bound the tries).
    if (ep === null && exclude.size > 0) ep = this.#balancer.pick(undefined, this.#hashKey);
    if (ep === null) return null;
    this.#balancer.onStart(ep);
    this.#picked = ep;
    if (this.#dest.perEndpointHeaders) {
      const h = this.#dest.headerFor(ep.key);
      this.extraRequestHeaders = this.#added === undefined ? h : (h ?? "") + this.#added;
    }
    return ep;
  }

  /** Sends `line` with every try from now on (the record layer's `traceparent`). */
  addRequestHeader(line: string): void {
    this.#added = line;
    this.extraRequestHeaders = (this.extraRequestHeaders ?? "") + line;
  }

  /** The backoff before another try, or null to stop (the retry policy decides). */
  retry(attempt: number, outcome: Outcome): number | null {
    if (!this.#open) return null;
    const d = this.#dest;
    const r = this.#tcp ? d.retryPolicy.decideConnect(outcome, attempt + 1) : d.retryPolicy.decide(
      this.#method,
      outcome,
      attempt + 1,
      this.timeoutMs > 0 ? this.timeoutMs - (d.deps.now() - this.#started) : Infinity,
    );
    if (!r.retry) return null;
    d.deps.metrics.retries.labels(d.service).inc();
    return r.delayMs;
  }

  /** Reports one try to the balancer and outlier detection. */
  onResult(ep: Endpoint, outcome: Outcome, latencyMs: number): void {
    const failed = isFailure(outcome);
    const bep = this.#picked !== null && this.#picked.key === ep.key
      ? this.#picked
      : ep as BalancedEndpoint;
    this.#picked = null;
    this.#tries++;
    this.#lastEp = ep;
    this.#last = outcome;
    this.#balancer.onEnd(bep, latencyMs, !failed);
    this.#dest.outlier.report(ep.key, outcome);
  }

  /** Finishes the request: breaker slot back, status and latency recorded. */
  onDone(status: number, bytesOut = 0, bytesIn?: number): void {
    if (!this.#open) return;
    this.#open = false;
    // A try that never reported (the client vanished mid-attempt) still gives back its slot.
    if (this.#picked !== null) {
      this.#balancer.onEnd(this.#picked, 0, false);
      this.#picked = null;
    }
    this.#dest.requests.release();
    if (!this.#tcp) {
      this.#metrics.record(status, (this.#dest.deps.now() - this.#started) / 1000);
    }
    this.recording?.done(status, bytesOut, bytesIn, this.#tries, this.#lastEp, this.#last);
  }
}
