/**
 * The CA state at the edges: reading it back from JSON (a Raft entry, a snapshot) with its
 * invariants checked, and the public view without private keys.
 * @module
 */
import { z } from "zod";
import { isTrustDomain } from "../../common/tls/mod.ts";
import {
  CA_NAME_PATTERN,
  CaError,
  type CaState,
  MAX_REVOKED_IDENTITIES,
  MAX_TRUSTED_ROOTS,
  type RevokedIdentity,
  type RotationRecord,
} from "./ca.ts";
import { MAX_RETIRED_INTERMEDIATES, type RetiredIntermediate } from "./retired.ts";

/** The state without private keys, for `GET` endpoints, debugging dumps and logs. */
export function publicCaView(state: CaState): {
  trustDomain: string;
  activeRootId: string;
  roots: {
    id: string;
    generation: number;
    certPem: string;
    notBefore: number;
    notAfter: number;
    offline: boolean;
    intermediate?: { id: string; certPem: string; notBefore: number; notAfter: number };
  }[];
  revoked: RevokedIdentity[];
  rotation: RotationRecord | null;
  retiredIntermediates: readonly RetiredIntermediate[];
} {
  return {
    trustDomain: state.trustDomain,
    activeRootId: state.activeRootId,
    roots: state.roots.map(({ keyPem, intermediate, ...pub }) => ({
      ...pub,
      offline: keyPem === undefined,
      ...(intermediate !== undefined
        ? {
          intermediate: {
            id: intermediate.id,
            certPem: intermediate.certPem,
            notBefore: intermediate.notBefore,
            notAfter: intermediate.notAfter,
          },
        }
        : {}),
    })),
    revoked: [...state.revoked],
    rotation: state.rotation ?? null,
    retiredIntermediates: state.retiredIntermediates ?? [],
  };
}

const _IntermediateSchema = z.strictObject({
  id: z.string().regex(/^[0-9a-f]+$/),
  certPem: z.string().includes("BEGIN CERTIFICATE"),
  keyPem: z.string().includes("BEGIN PRIVATE KEY"),
  notBefore: z.number(),
  notAfter: z.number(),
});

const _RootSchema = z.strictObject({
  id: z.string().regex(/^[0-9a-f]+$/),
  generation: z.number().int().min(1),
  certPem: z.string().includes("BEGIN CERTIFICATE"),
  keyPem: z.string().includes("BEGIN PRIVATE KEY").optional(),
  notBefore: z.number(),
  notAfter: z.number(),
  intermediate: _IntermediateSchema.optional(),
}).refine((r) => r.keyPem !== undefined || r.intermediate !== undefined, {
  message: "a root without its key needs an intermediate",
});

const _StateSchema = z.strictObject({
  version: z.literal(1),
  trustDomain: z.string().refine(isTrustDomain, "expected a trust domain"),
  name: z.string().regex(CA_NAME_PATTERN),
  activeRootId: z.string(),
  roots: z.array(_RootSchema).min(1).max(MAX_TRUSTED_ROOTS),
  revoked: z.array(z.strictObject({
    spiffeId: z.string(),
    revokedAt: z.number(),
    reason: z.string(),
  })).max(MAX_REVOKED_IDENTITIES),
  rotation: z.strictObject({
    phase: z.enum(["trust", "activate"]),
    newRootId: z.string(),
    oldRootId: z.string(),
    trigger: z.enum(["operator", "policy"]),
    startedAt: z.number(),
    phaseSince: z.number(),
    paused: z.string().max(4096).nullable(),
  }).optional(),
  retiredIntermediates: z.array(z.strictObject({
    id: z.string().regex(/^[0-9a-f]+$/),
    fingerprint: z.string().regex(/^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/),
    certPem: z.string().includes("BEGIN CERTIFICATE").max(16 * 1024),
    notAfter: z.number(),
    retiredAt: z.number(),
    distrustedAt: z.number().nullable(),
  })).max(MAX_RETIRED_INTERMEDIATES).optional(),
});

/**
 * Validates a value read back from JSON (a Raft entry, a snapshot) as a {@linkcode CaState}.
 * Checks shape only, not the cryptography.
 */
export function parseCaState(value: unknown): CaState {
  const r = _StateSchema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new CaError(
      "invalid_state",
      `invalid CA state at ${issue?.path.join(".") || "(root)"}: ${issue?.message}`,
    );
  }
  const s = r.data;
  if (!s.roots.some((x) => x.id === s.activeRootId)) {
    throw new CaError("invalid_state", `active root ${s.activeRootId} is not among the roots`);
  }
  const revoked = [...s.revoked].sort((a, b) => a.spiffeId < b.spiffeId ? -1 : 1);
  const rot = s.rotation;
  if (rot !== undefined) {
    if (!s.roots.some((x) => x.id === rot.newRootId) || s.roots.length < 2) {
      throw new CaError("invalid_state", `rotation names root ${rot.newRootId}, not trusted`);
    }
    const signing = rot.phase === "activate" ? rot.newRootId : rot.oldRootId;
    if (s.activeRootId !== signing) {
      throw new CaError(
        "invalid_state",
        `rotation in phase ${rot.phase} expects root ${signing} active, not ${s.activeRootId}`,
      );
    }
  }
  return { ...s, revoked };
}
