/**
 * Renews a proxy's certificates as soon as the CA's active root changes (the second phase of a
 * rotation), instead of at two thirds of their life: the rotation can then drop the old root
 * within seconds rather than one leaf lifetime later. Each renewer is asked once per new
 * active root, after a small random delay so a whole fleet does not ask the CA at once.
 * @module
 */
import { X509Certificate } from "node:crypto";
import { type Logger, nullLogger } from "../../common/log.ts";
import type { CertRenewer } from "./renewer.ts";
import { issuingRoot } from "./trust_report.ts";

/** Longest random delay before renewing after an activation, in ms. */
export const ACTIVATION_RENEW_JITTER_MS = 5_000;

/** Options of {@linkcode ActivationRenewal}. */
export interface ActivationRenewalOptions {
  /** The renewers of the proxy's identities. */
  renewers: () => readonly CertRenewer[];
  /** @default ACTIVATION_RENEW_JITTER_MS */
  jitterMs?: number;
  /** @default Math.random */
  random?: () => number;
  /** @default nullLogger */
  logger?: Logger;
}

/** Watches the active root in each catalog's trust bundle (active root first). */
export class ActivationRenewal {
  readonly #o: ActivationRenewalOptions;
  readonly #log: Logger;
  #active: string | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** Creates the watcher. */
  constructor(opts: ActivationRenewalOptions) {
    this.#o = opts;
    this.#log = (opts.logger ?? nullLogger).with({ component: "identity" });
  }

  /** Hears the catalog's roots (PEM, active first). */
  onRoots(roots: readonly string[]): void {
    const active = roots[0];
    if (active === undefined || active === this.#active) return;
    this.#active = active;
    let root: X509Certificate;
    try {
      root = new X509Certificate(active);
    } catch {
      return;
    }
    const stale = this.#o.renewers().filter((r) => {
      const m = r.current();
      return m !== null && issuingRoot(m.certPem, [root]) === null;
    });
    if (stale.length === 0) return;
    clearTimeout(this.#timer);
    const delay = Math.floor(
      (this.#o.random ?? Math.random)() * (this.#o.jitterMs ?? ACTIVATION_RENEW_JITTER_MS),
    );
    this.#log.info("the CA signs with a new root; renewing certificates", {
      certificates: stale.length,
      in_ms: delay,
    });
    this.#timer = setTimeout(() => {
      for (const r of stale) {
        r.renewNow().catch((e) =>
          this.#log.warn("renewal after a root activation failed; the schedule retries", {
            error: (e as Error).message,
          })
        );
      }
    }, delay);
    Deno.unrefTimer(this.#timer);
  }

  /** Cancels a pending renewal. */
  stop(): void {
    clearTimeout(this.#timer);
  }
}
