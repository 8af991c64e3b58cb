/**
 * The shape of a rotated-out intermediate in the CA state, apart from `ca.ts` so that the
 * state and the distrust logic (`distrust.ts`) share it without importing each other.
 * @module
 */

/** Most rotated-out intermediates remembered (the distrust list's bound, `distrust.ts`). */
export const MAX_RETIRED_INTERMEDIATES = 16;

/** An intermediate that no longer signs, as the CA state remembers it. */
export interface RetiredIntermediate {
  /** Hex Subject Key Identifier, as `GET /v1/ca/roots` showed it while it signed. */
  readonly id: string;
  /** SHA-256 fingerprint of the certificate (`AA:BB:…`), as trust reports name it. */
  readonly fingerprint: string;
  /** The certificate. */
  readonly certPem: string;
  /** Validity end, ms since the epoch: after it nothing chains through it anyway. */
  readonly notAfter: number;
  /** When a newer intermediate replaced it, ms since the epoch. */
  readonly retiredAt: number;
  /** When it was distrusted, ms since the epoch, or null while its leaves are still trusted. */
  readonly distrustedAt: number | null;
}
