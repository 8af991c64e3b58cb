/**
 * A control node's own certificate. Every control node holds the CA key (it is in the
 * replicated state), so it issues its own leaf locally instead of asking anyone: SPIFFE id
 * `spiffe://<td>/control/<node>` plus the IP/DNS names peers and operators reach it by.
 * @module
 */
import type { Logger } from "../../common/log.ts";
import { nullLogger } from "../../common/log.ts";
import { DistrustedIssuers, spiffeIdFor, type TlsMaterial } from "../../common/tls/mod.ts";
import {
  activeSignerId,
  type CaState,
  distrustedIntermediatePems,
  issueCertificate,
  type IssuedCertificate,
  LEAF_TTL_MS_DEFAULT,
  trustBundlePem,
} from "../ca/mod.ts";

/** First delay after a failed renewal; doubles per failure up to {@linkcode RENEW_RETRY_MAX_MS}. */
export const RENEW_RETRY_BASE_MS = 1_000;
/** Longest delay between renewal attempts after failures. */
export const RENEW_RETRY_MAX_MS = 60_000;
/** Listeners kept at once; a leak of subscriptions shows up as an error, not as memory growth. */
export const MAX_IDENTITY_LISTENERS = 64;

/** Time source and timers, injected so tests run on virtual time. */
export interface IdentityClock {
  /** Current time, ms since the epoch. */
  now(): number;
  /** Calls `fn` after `ms`; returns a handle for `clearTimer`. */
  setTimer(fn: () => void, ms: number): unknown;
  /** Cancels a timer. */
  clearTimer(handle: unknown): void;
}

/** The real clock. */
export const systemIdentityClock: IdentityClock = {
  now: () => Date.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (h) => clearTimeout(h as number),
};

/**
 * What a TLS endpoint needs from an identity: the current material (read per connection), the
 * revocation check, and change notifications (to swap a server's secure context).
 */
export interface TlsIdentitySource {
  /** The trust domain peers must belong to. */
  readonly trustDomain: string;
  /** Certificate, key and trust bundle to use for the next connection. */
  material(): TlsMaterial;
  /** Whether a peer's SPIFFE id is revoked. */
  isRevoked(spiffeId: string): boolean;
  /** Whether a distrusted intermediate signed a peer's leaf (DER). @default never */
  isDistrusted?(leafDer: Uint8Array): boolean;
  /** Calls `listener` after every change of material; returns an unsubscribe function. */
  onChange(listener: (m: TlsMaterial) => void): () => void;
}

/** Options of {@linkcode ControlIdentity.create}. */
export interface ControlIdentityOptions {
  /** This control node's id. */
  node: string;
  /** The mesh trust domain. */
  trustDomain: string;
  /** Extra names for the leaf: the advertise address, 127.0.0.1, localhost. */
  sans: { ip: readonly string[]; dns: readonly string[] };
  /** The CA to issue from (the seed at start-up, the replicated state afterwards). */
  ca: CaState;
  /** Clock and timers. @default systemIdentityClock */
  clock?: IdentityClock;
  /** Leaf lifetime. @default LEAF_TTL_MS_DEFAULT (24 h) */
  leafTtlMs?: number;
  /** Logger. @default nullLogger */
  logger?: Logger;
}

/** Facts about the current leaf, safe to log or show. */
export interface LeafInfo {
  /** The SPIFFE id in the leaf. */
  readonly spiffeId: string;
  /** Hex serial. */
  readonly serial: string;
  /** Validity start, ms since the epoch. */
  readonly notBefore: number;
  /** Validity end, ms since the epoch. */
  readonly notAfter: number;
  /** The root that signed it. */
  readonly rootId: string;
}

/**
 * A control node's certificate, kept current: renewed at 2/3 of its life, re-issued when the
 * CA's active root changes, its bundle and revocation list refreshed on every CA change.
 */
export class ControlIdentity implements TlsIdentitySource {
  /** The mesh trust domain. */
  readonly trustDomain: string;
  /** `spiffe://<td>/control/<node>`. */
  readonly spiffeId: string;
  readonly #opts: ControlIdentityOptions;
  readonly #clock: IdentityClock;
  readonly #log: Logger;
  readonly #listeners = new Set<(m: TlsMaterial) => void>();
  readonly #distrustListeners = new Set<() => void>();
  #ca: CaState;
  #leaf: IssuedCertificate;
  #leafRootId: string;
  /** What signed the current leaf: the root, or its intermediate when the root is offline. */
  #leafSignerId: string;
  #material: TlsMaterial;
  #revoked: ReadonlySet<string>;
  #distrusted: DistrustedIssuers;
  #timer: unknown = null;
  #failures = 0;
  #closed = false;
  /** When the current leaf was issued (this node's clock), ms since the epoch. */
  #issuedAt = 0;
  /** Serializes issuing: a renewal and a CA update never interleave. */
  #chain: Promise<void> = Promise.resolve();

  private constructor(opts: ControlIdentityOptions, leaf: IssuedCertificate) {
    this.#opts = opts;
    this.#clock = opts.clock ?? systemIdentityClock;
    this.#log = (opts.logger ?? nullLogger).with({ component: "control_identity" });
    this.trustDomain = opts.trustDomain;
    this.spiffeId = leaf.spiffeId;
    this.#ca = opts.ca;
    this.#leaf = leaf;
    this.#issuedAt = this.#clock.now();
    this.#leafRootId = opts.ca.activeRootId;
    this.#leafSignerId = activeSignerId(opts.ca);
    this.#material = _material(leaf, opts.ca);
    this.#revoked = _revokedSet(opts.ca);
    this.#distrusted = new DistrustedIssuers(distrustedIntermediatePems(opts.ca));
  }

  /** Issues the first leaf from `opts.ca` and schedules its renewal. */
  static async create(opts: ControlIdentityOptions): Promise<ControlIdentity> {
    if (opts.ca.trustDomain !== opts.trustDomain) {
      throw new RangeError(
        `control identity: CA is for ${opts.ca.trustDomain}, node is in ${opts.trustDomain}`,
      );
    }
    // Validates node and trust domain before any key is generated.
    spiffeIdFor(opts.trustDomain, { kind: "control", node: opts.node });
    const clock = opts.clock ?? systemIdentityClock;
    const leaf = await _issue(opts, opts.ca, clock.now());
    const id = new ControlIdentity(opts, leaf);
    id.#log.info("control certificate issued", id.#logFields());
    id.#schedule(id.#renewDelay());
    return id;
  }

  /** Certificate, key and trust bundle (every trusted root) for the next connection. */
  material(): TlsMaterial {
    return this.#material;
  }

  /** The current leaf's public facts. */
  leaf(): LeafInfo {
    return {
      spiffeId: this.#leaf.spiffeId,
      serial: this.#leaf.serial,
      notBefore: this.#leaf.notBefore,
      notAfter: this.#leaf.notAfter,
      rootId: this.#leafRootId,
    };
  }

  /** Ids of the roots this node trusts now (for errors that must say which roots those are). */
  trustedRootIds(): string[] {
    return this.#ca.roots.map((r) => r.id);
  }

  /** Whether `spiffeId` is on the CA's revocation list (as of the last `updateCa`). */
  isRevoked(spiffeId: string): boolean {
    return this.#revoked.has(spiffeId);
  }

  /** Whether a distrusted intermediate signed `leafDer` (as of the last `updateCa`). */
  isDistrusted(leafDer: Uint8Array): boolean {
    return this.#distrusted.refuses(leafDer);
  }

  /**
   * Calls `listener` when an intermediate is newly distrusted, so open connections made with
   * its leaves can be cut; returns an unsubscribe function.
   */
  onDistrust(listener: () => void): () => void {
    if (this.#distrustListeners.size >= MAX_IDENTITY_LISTENERS) {
      throw new RangeError(`control identity: more than ${MAX_IDENTITY_LISTENERS} listeners`);
    }
    this.#distrustListeners.add(listener);
    return () => this.#distrustListeners.delete(listener);
  }

  /** Calls `listener` after every change of material; returns an unsubscribe function. */
  onChange(listener: (m: TlsMaterial) => void): () => void {
    if (this.#listeners.size >= MAX_IDENTITY_LISTENERS) {
      throw new RangeError(`control identity: more than ${MAX_IDENTITY_LISTENERS} listeners`);
    }
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Takes a new CA state (a rotation, an activation, a revocation, or the replicated CA that
   * replaces the seed). A new active root means a new leaf; a new bundle means new material;
   * the revocation list is refreshed in every case. Resolves once done; a failed re-issue is
   * logged and retried, the current leaf stays in use meanwhile.
   */
  updateCa(state: CaState): Promise<void> {
    return this.#enqueue(async () => {
      if (this.#closed) return;
      if (state.trustDomain !== this.trustDomain) {
        this.#log.error("ignoring a CA of another trust domain", {
          ca_trust_domain: state.trustDomain,
          trust_domain: this.trustDomain,
        });
        return;
      }
      const prev = this.#ca;
      this.#ca = state;
      this.#revoked = _revokedSet(state);
      const before = this.#distrusted.pems;
      this.#distrusted = new DistrustedIssuers(distrustedIntermediatePems(state));
      if (this.#distrusted.pems.some((p) => !before.includes(p))) this.#notifyDistrust();
      if (
        state.activeRootId !== this.#leafRootId || activeSignerId(state) !== this.#leafSignerId
      ) {
        this.#log.info("CA signer changed; issuing a new control certificate", {
          root: state.activeRootId,
          signer: activeSignerId(state),
        });
        await this.#reissue();
        return;
      }
      if (trustBundlePem(state) !== trustBundlePem(prev)) {
        this.#material = _material(this.#leaf, state);
        this.#notify();
      }
    });
  }

  /** Issues a new leaf now (also what the renewal timer does). */
  renewNow(): Promise<void> {
    return this.#enqueue(() => this.#reissue());
  }

  /** Stops the renewal timer; material stays readable. Idempotent. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== null) this.#clock.clearTimer(this.#timer);
    this.#timer = null;
    this.#listeners.clear();
  }

  #enqueue(op: () => Promise<void>): Promise<void> {
    const run = this.#chain.then(op);
    // The chain itself never rejects, so one failure cannot wedge later updates.
    this.#chain = run.catch(() => {});
    return run;
  }

  async #reissue(): Promise<void> {
    if (this.#closed) return;
    const ca = this.#ca;
    try {
      const issuedAt = this.#clock.now();
      const leaf = await _issue(this.#opts, ca, issuedAt);
      if (this.#closed) return;
      this.#leaf = leaf;
      this.#issuedAt = issuedAt;
      this.#leafRootId = ca.activeRootId;
      this.#leafSignerId = activeSignerId(ca);
      this.#material = _material(leaf, this.#ca);
      this.#failures = 0;
      this.#log.info("control certificate issued", this.#logFields());
      this.#schedule(this.#renewDelay());
      this.#notify();
    } catch (e) {
      this.#failures++;
      const delay = Math.min(
        RENEW_RETRY_BASE_MS * 2 ** Math.min(this.#failures - 1, 16),
        RENEW_RETRY_MAX_MS,
      );
      this.#log.error("control certificate issue failed; keeping the current one", {
        error: e as Error,
        retry_in_ms: delay,
        not_after: new Date(this.#leaf.notAfter).toISOString(),
      });
      this.#schedule(delay);
    }
  }

  /**
   * Renewal at 2/3 of the lifetime counted from when the leaf was issued, like the proxies'
   * renewer: the backdated `notBefore` is a skew allowance, not part of the granted lifetime.
   */
  #renewDelay(): number {
    const { notBefore, notAfter } = this.#leaf;
    const from = Math.min(Math.max(notBefore, this.#issuedAt), notAfter);
    const at = from + Math.floor((notAfter - from) * 2 / 3);
    return Math.max(0, at - this.#clock.now());
  }

  #schedule(ms: number): void {
    if (this.#closed) return;
    if (this.#timer !== null) this.#clock.clearTimer(this.#timer);
    this.#timer = this.#clock.setTimer(() => {
      this.#timer = null;
      void this.renewNow();
    }, ms);
  }

  #notifyDistrust(): void {
    for (const l of [...this.#distrustListeners]) {
      try {
        l();
      } catch (e) {
        this.#log.error("control identity listener threw", { error: e as Error });
      }
    }
  }

  #notify(): void {
    for (const l of [...this.#listeners]) {
      try {
        l(this.#material);
      } catch (e) {
        this.#log.error("control identity listener threw", { error: e as Error });
      }
    }
  }

  #logFields(): Record<string, string> {
    return {
      spiffe_id: this.#leaf.spiffeId,
      serial: this.#leaf.serial,
      root: this.#leafRootId,
      not_after: new Date(this.#leaf.notAfter).toISOString(),
    };
  }
}

function _issue(
  opts: ControlIdentityOptions,
  ca: CaState,
  now: number,
): Promise<IssuedCertificate> {
  return issueCertificate(ca, {
    identity: { kind: "control", node: opts.node },
    now,
    ttlMs: opts.leafTtlMs ?? LEAF_TTL_MS_DEFAULT,
    extraSans: { ip: opts.sans.ip, dns: opts.sans.dns },
  });
}

function _material(leaf: IssuedCertificate, ca: CaState): TlsMaterial {
  return { certPem: leaf.certPem, keyPem: leaf.keyPem, caPem: trustBundlePem(ca) };
}

function _revokedSet(ca: CaState): ReadonlySet<string> {
  return new Set(ca.revoked.map((r) => r.spiffeId));
}
