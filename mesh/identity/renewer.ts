/**
 * Keeps a proxy's certificate fresh: a new key and CSR at two thirds of the lifetime, signed by
 * an injected `sign` function, swapped in without touching established connections (listeners
 * subscribe with `onChange` and call `updateSecureContext`).
 * @module
 */
import { type Logger, nullLogger } from "../../common/log.ts";
import {
  identityOfLabel,
  keepsATrustedRoot,
  spiffeIdFor,
  splitPemCerts,
  type TlsMaterial,
} from "../../common/tls/mod.ts";
import { clockSkewProblem, parseCert, renewAt } from "./cert_info.ts";
import { createKeyAndCsr } from "./csr.ts";
import { keyMatchesCert } from "./store.ts";

/** First retry delay after a failed renewal. */
export const RENEW_RETRY_BASE_MS = 1_000;
/** Longest retry delay after repeated failures. */
export const RENEW_RETRY_MAX_MS = 60_000;
/** Longest single timer (setTimeout's limit is ~24.8 days); longer waits re-arm. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
/**
 * Least time between a renewal and the next one. A clock far ahead of the CA's puts a fresh
 * certificate's renewal time in the past already; without a floor the renewer would ask again
 * at once, for ever (a new key and fsynced writes each time).
 */
export const MIN_RENEW_INTERVAL_MS = 30_000;

/** Time and timers, injectable so tests run on virtual time. */
export interface RenewerClock {
  /** Current time, ms since the epoch. */
  now(): number;
  /** Calls `fn` after `ms`; returns a handle for `clearTimer`. */
  setTimer(fn: () => void, ms: number): unknown;
  /** Cancels a timer. */
  clearTimer(handle: unknown): void;
}

/** The real clock. */
export const systemClock: RenewerClock = {
  now: () => Date.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (h) => clearTimeout(h as number),
};

/** What the CA answers to a CSR. */
export interface SignResponse {
  /** The new leaf, PEM. */
  readonly certPem: string;
  /** The trust bundle, PEM. */
  readonly caPem: string;
}

/** Options of {@linkcode CertRenewer}. */
export interface CertRenewerOptions {
  /** Service this proxy holds the identity of. */
  service: string;
  /** Trust domain of the mesh. */
  trustDomain: string;
  /**
   * Sends a CSR to the CA (`POST /v1/ca/sign`), authenticated by the join token the first time
   * and by the current certificate ({@linkcode CertRenewer.current}) afterwards.
   */
  sign: (csrPem: string) => Promise<SignResponse>;
  /** Material loaded from disk at start, if any. */
  initial?: TlsMaterial | null;
  /** Stores new material (e.g. `saveIdentity(dataDir, m)`) before listeners see it. */
  persist?: (material: TlsMaterial) => Promise<void>;
  /** Clock and timers. @default systemClock */
  clock?: RenewerClock;
  /** Logger. @default nullLogger */
  logger?: Logger;
  /** @default RENEW_RETRY_BASE_MS */
  retryBaseMs?: number;
  /** @default RENEW_RETRY_MAX_MS */
  retryMaxMs?: number;
}

/** Thrown when the CA's answer cannot be used. */
export class RenewalError extends Error {
  /** Creates the error. */
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = "RenewalError";
  }
}

/**
 * Renews the certificate on schedule. `start()` resolves with usable material (renewing first
 * when there is none or it is past its renewal time); `current()` is the material now;
 * `onChange` listeners get every new material in order.
 */
export class CertRenewer {
  #opts: CertRenewerOptions;
  #clock: RenewerClock;
  #log: Logger;
  #material: TlsMaterial | null;
  #listeners = new Set<(m: TlsMaterial) => void>();
  #timer: unknown = undefined;
  #failures = 0;
  #stopped = true;
  #inflight: Promise<TlsMaterial> | null = null;
  #nextAt: number | null = null;

  /** Creates a renewer; nothing happens until {@linkcode CertRenewer.start}. */
  constructor(opts: CertRenewerOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#log = (opts.logger ?? nullLogger).with({ component: "cert_renewer" });
    this.#material = opts.initial ?? null;
  }

  /** The material in use now, or null before the first certificate. */
  current(): TlsMaterial | null {
    return this.#material;
  }

  /** When the next renewal attempt is scheduled (ms since the epoch), or null. */
  get nextRenewalAt(): number | null {
    return this.#nextAt;
  }

  /** Subscribes to new material; returns the unsubscribe function. */
  onChange(listener: (m: TlsMaterial) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Starts the schedule. Resolves with usable material: the initial one when it is still before
   * its renewal time, else after a successful renewal (which the first failure rejects: the
   * caller decides whether to retry or exit).
   */
  async start(): Promise<TlsMaterial> {
    this.#stopped = false;
    const m = this.#material;
    if (m && this.#clock.now() < renewAt(m.certPem) && this.#usable(m)) {
      this.#schedule(renewAt(m.certPem));
      return m;
    }
    try {
      return await this.renewNow();
    } catch (e) {
      if (m && this.#usable(m)) {
        // Still valid, just due: keep serving with it and retry in the background.
        this.#log.warn("certificate renewal failed; retrying", { error: (e as Error).message });
        this.#scheduleRetry();
        return m;
      }
      this.#stopped = true;
      throw e;
    }
  }

  /** Stops the schedule; the current material stays readable. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#nextAt = null;
  }

  /**
   * Renews now: new key, CSR, `sign`, checks, persist, notify. Concurrent calls share one
   * attempt. On success the next renewal is scheduled.
   */
  renewNow(): Promise<TlsMaterial> {
    if (!this.#inflight) {
      this.#inflight = this.#renew().finally(() => {
        this.#inflight = null;
      });
    }
    return this.#inflight;
  }

  /**
   * Replaces the trust bundle only (a CA rotation started: the new root must be trusted before
   * any peer presents a certificate it signed). Notifies listeners when it changed.
   */
  async updateTrustBundle(caPem: string): Promise<void> {
    await this.#install((m) => !m || m.caPem === caPem ? null : { ...m, caPem });
  }

  async #renew(): Promise<TlsMaterial> {
    const { service, trustDomain } = this.#opts;
    const { keyPem, csrPem } = await createKeyAndCsr({ service, trustDomain });
    let res: SignResponse;
    try {
      res = await this.#opts.sign(csrPem);
    } catch (e) {
      throw new RenewalError(`signing request failed: ${(e as Error).message}`, e);
    }
    const receivedAt = this.#clock.now();
    const material: TlsMaterial = { certPem: res.certPem, keyPem, caPem: res.caPem };
    const info = (() => {
      try {
        return parseCert(res.certPem);
      } catch (e) {
        throw new RenewalError(`CA answered with an unreadable certificate`, e);
      }
    })();
    const id = identityOfLabel(service);
    const expected = id === null ? `(no identity ${service})` : spiffeIdFor(trustDomain, id);
    if (info.spiffeId?.uri !== expected) {
      throw new RenewalError(
        `CA signed ${info.spiffeId?.uri ?? "no SPIFFE id"}, expected ${expected}`,
      );
    }
    const skew = clockSkewProblem(info, this.#clock.now());
    if (skew !== null) throw new RenewalError(skew);
    if (!keyMatchesCert(res.certPem, keyPem)) {
      throw new RenewalError("CA answered with a certificate for another key");
    }
    await this.#install((held) => {
      // The same rule as a catalog's bundle: a rotation always overlaps, so an answer that
      // trusts none of today's roots is not one (a wrong or hostile CA answering), and taking
      // it would hand every identity check to roots this proxy never trusted.
      if (
        held !== null &&
        !keepsATrustedRoot(new Set(splitPemCerts(held.caPem)), splitPemCerts(res.caPem))
      ) {
        throw new RenewalError(
          "CA answered with a trust bundle that keeps none of the current roots",
        );
      }
      return material;
    });
    this.#failures = 0;
    this.#log.info("certificate renewed", {
      spiffe_id: expected,
      serial: info.serial,
      not_after: new Date(info.notAfter).toISOString(),
    });
    const next = renewAt(info, receivedAt);
    const floor = this.#clock.now() + MIN_RENEW_INTERVAL_MS;
    if (next < floor) {
      this.#log.warn("renewal due at once after a renewal: is this clock ahead of the CA's?", {
        not_before: new Date(info.notBefore).toISOString(),
        not_after: new Date(info.notAfter).toISOString(),
      });
    }
    if (!this.#stopped) this.#schedule(Math.max(next, floor));
    return material;
  }

  /** The installs queued so far; each starts when the one before it has finished. */
  #installs: Promise<unknown> = Promise.resolve();

  /**
   * Persists, then publishes, what `next` makes of the material current when this install's
   * turn comes (null: nothing to change). Installs run one at a time, so a trust-bundle update
   * being saved while a renewal lands (or the other way round) builds on the other's result
   * instead of putting back the material it replaced.
   */
  #install(next: (current: TlsMaterial | null) => TlsMaterial | null): Promise<void> {
    const run = async () => {
      const material = next(this.#material);
      if (material === null) return;
      if (this.#opts.persist) await this.#opts.persist(material);
      this.#material = material;
      for (const l of [...this.#listeners]) {
        try {
          l(material);
        } catch (e) {
          this.#log.error("certificate listener failed", { error: (e as Error).message });
        }
      }
    };
    const done = this.#installs.then(run);
    this.#installs = done.catch(() => {});
    return done;
  }

  #usable(m: TlsMaterial): boolean {
    try {
      return parseCert(m.certPem).notAfter > this.#clock.now();
    } catch {
      return false;
    }
  }

  #schedule(at: number): void {
    if (this.#stopped) return;
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#nextAt = at;
    const delay = Math.min(Math.max(0, at - this.#clock.now()), MAX_TIMER_MS);
    this.#timer = this.#clock.setTimer(() => this.#fire(), delay);
  }

  #scheduleRetry(): void {
    const base = this.#opts.retryBaseMs ?? RENEW_RETRY_BASE_MS;
    const max = this.#opts.retryMaxMs ?? RENEW_RETRY_MAX_MS;
    const delay = Math.min(max, base * 2 ** Math.min(this.#failures, 30));
    this.#failures++;
    this.#schedule(this.#clock.now() + delay);
  }

  #fire(): void {
    this.#timer = undefined;
    if (this.#stopped) return;
    if (this.#nextAt !== null && this.#clock.now() < this.#nextAt) {
      this.#schedule(this.#nextAt); // a wait longer than one timer allows
      return;
    }
    this.renewNow().catch((e) => {
      if (this.#stopped) return;
      const m = this.#material;
      const level = m && this.#usable(m) ? "warn" : "error";
      this.#log[level]("certificate renewal failed; retrying", {
        error: (e as Error).message,
        failures: this.#failures + 1,
      });
      this.#scheduleRetry();
    });
  }
}
