/**
 * Active health checks of a local app (`services[].health: { http: /healthz, interval }`).
 *
 * A probe answers `passing`, `warning` or `critical` (the HTTP prober: 2xx passing, 429
 * warning, anything else, an error or a timeout critical, as Consul does). The reported
 * status moves towards a better result only after `rise` consecutive such results and
 * towards a worse one after `fall`, so one slow probe does not flap the catalog. The very
 * first result applies at once: there is no history to smooth yet, and a new instance
 * should not wait `rise` intervals to receive traffic. Until then the status is `initial`.
 * @module
 */
import { abortableSleep } from "../../common/sleep.ts";

/** Health of a local service instance. */
export type HealthStatus = "passing" | "warning" | "critical";

/** One probe of the app; it should stop when `signal` aborts. */
export type Prober = (signal: AbortSignal) => Promise<HealthStatus>;

/** Defaults of the health-check options. */
export const HEALTH_CHECK_DEFAULTS = Object.freeze({
  intervalMs: 10_000,
  rise: 2,
  fall: 3,
  initial: "critical" as HealthStatus,
});

/** Options of {@linkcode HealthChecker}. */
export interface HealthCheckOptions {
  /** Time between probes. @default 10000 */
  intervalMs?: number;
  /** A probe taking longer counts as critical. @default min(intervalMs, 5000) */
  timeoutMs?: number;
  /** Consecutive better results needed to improve the status. @default 2 */
  rise?: number;
  /** Consecutive worse results needed to degrade the status. @default 3 */
  fall?: number;
  /** Status before the first probe. @default "critical" */
  initial?: HealthStatus;
}

/** Waits `ms` or until `signal` aborts. */
export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

const _RANK: Record<HealthStatus, number> = { passing: 0, warning: 1, critical: 2 };

/** Bound on how long any probe's timeout can be, whatever the config says. */
export const MAX_PROBE_TIMEOUT_MS = 60_000;

/** The rise/fall state machine plus the probing loop for one local instance. */
export class HealthChecker {
  /** Time between probes. */
  readonly intervalMs: number;
  /** Per-probe timeout. */
  readonly timeoutMs: number;
  private readonly _prober: Prober;
  private readonly _rise: number;
  private readonly _fall: number;
  private readonly _onChange: (now: HealthStatus, before: HealthStatus) => void;
  private _status: HealthStatus;
  private _seen = false;
  private _candidate: HealthStatus | null = null;
  private _streak = 0;

  /** Creates a checker; `onChange` hears each status transition. */
  constructor(
    prober: Prober,
    opts: HealthCheckOptions = {},
    onChange: (now: HealthStatus, before: HealthStatus) => void = () => {},
  ) {
    this._prober = prober;
    this.intervalMs = opts.intervalMs ?? HEALTH_CHECK_DEFAULTS.intervalMs;
    this.timeoutMs = Math.min(
      MAX_PROBE_TIMEOUT_MS,
      opts.timeoutMs ?? Math.min(this.intervalMs, 5000),
    );
    this._rise = Math.max(1, opts.rise ?? HEALTH_CHECK_DEFAULTS.rise);
    this._fall = Math.max(1, opts.fall ?? HEALTH_CHECK_DEFAULTS.fall);
    this._status = opts.initial ?? HEALTH_CHECK_DEFAULTS.initial;
    this._onChange = onChange;
  }

  /** The status to report to the control plane. */
  get status(): HealthStatus {
    return this._status;
  }

  /** Feeds one probe result through rise/fall; returns the resulting status. */
  record(result: HealthStatus): HealthStatus {
    if (!this._seen) {
      this._seen = true;
      this._set(result);
      return this._status;
    }
    if (result === this._status) {
      this._candidate = null;
      this._streak = 0;
      return this._status;
    }
    if (result === this._candidate) this._streak++;
    else {
      this._candidate = result;
      this._streak = 1;
    }
    const need = _RANK[result] < _RANK[this._status] ? this._rise : this._fall;
    if (this._streak >= need) this._set(result);
    return this._status;
  }

  /** Runs one probe (bounded by `timeoutMs`; failures count as critical) and records it. */
  async check(): Promise<HealthStatus> {
    const ac = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<HealthStatus>((resolve) => {
      timer = setTimeout(() => {
        ac.abort(new Error(`health probe timed out after ${this.timeoutMs}ms`));
        resolve("critical");
      }, this.timeoutMs);
    });
    let result: HealthStatus;
    try {
      // The race also covers a prober that ignores its signal.
      result = await Promise.race([this._prober(ac.signal), timedOut]);
    } catch {
      result = "critical";
    } finally {
      clearTimeout(timer);
    }
    return this.record(result);
  }

  /** Probes every `intervalMs` until `signal` aborts. */
  async run(signal: AbortSignal, sleep: Sleep = abortableSleep): Promise<void> {
    while (!signal.aborted) {
      await this.check();
      if (signal.aborted) break;
      await sleep(this.intervalMs, signal);
    }
  }

  private _set(s: HealthStatus): void {
    this._candidate = null;
    this._streak = 0;
    if (s === this._status) return;
    const before = this._status;
    this._status = s;
    this._onChange(s, before);
  }
}

export { abortableSleep } from "../../common/sleep.ts";

/** Maps an HTTP status of a health endpoint to a health status (Consul's convention). */
export function healthFromHttpStatus(status: number): HealthStatus {
  if (status >= 200 && status < 300) return "passing";
  if (status === 429) return "warning";
  return "critical";
}

/** A prober that GETs `url` (e.g. `http://127.0.0.1:8080/healthz`) with `fetch`. */
export function httpProber(url: string, fetchFn: typeof fetch = fetch): Prober {
  return async (signal) => {
    const res = await fetchFn(url, {
      signal,
      redirect: "manual",
      headers: { "user-agent": "skein-health-check" },
    });
    // The body is not needed; cancelling frees the connection at once.
    await res.body?.cancel();
    return healthFromHttpStatus(res.status);
  };
}
