/**
 * A CA rotation the control plane carries through by itself, as pure decisions over a
 * {@linkcode CaState}: trust the new root, wait until every member holds it, let it sign, wait
 * until every leaf comes from it (or one leaf lifetime), drop the old root. The leader asks
 * {@linkcode planRotation} what to do next and commits the result with a compare-and-set on
 * the whole state ({@linkcode caDigest}), so two leaders, or an operator and a leader, never
 * both apply a step computed from the same state.
 * @module
 */
import { createHash, X509Certificate } from "node:crypto";
import {
  activateRoot,
  type CaRoot,
  type CaState,
  finishRotation,
  MAX_TRUSTED_ROOTS,
  rotateCa,
} from "./ca.ts";

/** How the leader treats rotations: when to start one, how long to wait for stragglers. */
export interface RotationPolicy {
  /** Start a rotation when the active root expires within this long (ms); null: never. */
  readonly rotateBeforeExpiryMs: number | null;
  /** Longest wait in the trust phase for members that have not confirmed the new bundle. */
  readonly trustWaitMs: number;
  /** After that wait: activate anyway (`proceed`) or stop with an alert (`pause`). */
  readonly onStuck: "proceed" | "pause";
  /** Lifetime of proxy leaves: once it has passed since activation, no old leaf is left. */
  readonly leafTtlMs: number;
}

/** Who has not caught up yet, as the leader sees it (member names, sorted). */
export interface RotationProgress {
  /** Members that have not confirmed they trust the new root. */
  readonly missingTrust: readonly string[];
  /** Members whose certificate does not come from the new root yet. */
  readonly missingLeaves: readonly string[];
}

/** The next step of a rotation. */
export type RotationStep =
  | { readonly kind: "none" }
  | { readonly kind: "start"; readonly reason: string }
  | { readonly kind: "activate"; readonly skipped: readonly string[] }
  | { readonly kind: "pause"; readonly reason: string }
  | { readonly kind: "finish"; readonly skipped: readonly string[] };

/** Longest list of member names quoted in an alert. */
const _NAMES_IN_REASON = 10;

/**
 * Decides what the leader does now. Pure: the same state, progress, policy and time give the
 * same step. A rotation run by hand (two roots, no record) is left alone.
 */
export function planRotation(
  ca: CaState,
  progress: RotationProgress,
  policy: RotationPolicy,
  now: number,
): RotationStep {
  const rot = ca.rotation;
  if (rot === undefined) {
    if (ca.roots.length >= MAX_TRUSTED_ROOTS || policy.rotateBeforeExpiryMs === null) {
      return { kind: "none" };
    }
    const active = _active(ca);
    // An offline root cannot be replaced from here; its intermediate is replaced by an operator.
    if (active.keyPem === undefined) return { kind: "none" };
    if (active.notAfter - now > policy.rotateBeforeExpiryMs) return { kind: "none" };
    return {
      kind: "start",
      reason: `root ${active.id} expires at ${new Date(active.notAfter).toISOString()}`,
    };
  }
  if (rot.paused !== null) return { kind: "none" };
  if (rot.phase === "trust") {
    if (progress.missingTrust.length === 0) return { kind: "activate", skipped: [] };
    if (now - rot.phaseSince < policy.trustWaitMs) return { kind: "none" };
    if (policy.onStuck === "proceed") {
      return { kind: "activate", skipped: [...progress.missingTrust] };
    }
    return {
      kind: "pause",
      reason:
        `${progress.missingTrust.length} member(s) did not confirm the new root within ${
          Math.round(policy.trustWaitMs / 1000)
        }s: ${_names(progress.missingTrust)}; run \`skein ctl ca activate ${rot.newRootId}\` ` +
        `to go on without them`,
    };
  }
  if (progress.missingLeaves.length === 0) return { kind: "finish", skipped: [] };
  if (now - rot.phaseSince >= policy.leafTtlMs) {
    return { kind: "finish", skipped: [...progress.missingLeaves] };
  }
  return { kind: "none" };
}

/**
 * Starts a driven rotation: a new root, trusted but not signing yet, and the record the leader
 * carries it through with. Refused (`rotation_in_progress`) while one runs.
 */
export async function beginRotation(
  ca: CaState,
  opts: { now: number; trigger: "operator" | "policy"; validityMs?: number },
): Promise<CaState> {
  const next = await rotateCa(ca, {
    now: opts.now,
    activate: false,
    ...(opts.validityMs !== undefined ? { validityMs: opts.validityMs } : {}),
  });
  const added = next.roots.find((r) => !ca.roots.some((o) => o.id === r.id))!;
  return {
    ...next,
    rotation: {
      phase: "trust",
      newRootId: added.id,
      oldRootId: ca.activeRootId,
      trigger: opts.trigger,
      startedAt: opts.now,
      phaseSince: opts.now,
      paused: null,
    },
  };
}

/** Applies a step from {@linkcode planRotation} (other than `start`) to the state. */
export function applyRotationStep(ca: CaState, step: RotationStep, now: number): CaState {
  const rot = ca.rotation;
  if (rot === undefined) return ca;
  switch (step.kind) {
    case "activate":
      return activateRoot(ca, rot.newRootId, now);
    case "finish":
      return finishRotation(ca);
    case "pause":
      return { ...ca, rotation: { ...rot, paused: step.reason } };
    default:
      return ca;
  }
}

/**
 * A digest of the whole CA state: the compare-and-set of `put_ca`. Every node holds the state
 * as parsed from the same JSON, so every node computes the same digest.
 */
export function caDigest(ca: CaState | null): string {
  return createHash("sha256").update(ca === null ? "null" : JSON.stringify(ca)).digest("hex");
}

/** The SHA-256 fingerprint of a certificate, as proxies report the roots they trust. */
export function certFingerprint(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256;
}

/** The fingerprint of each trusted root, by root id. */
export function rootFingerprints(ca: CaState): Map<string, string> {
  return new Map(ca.roots.map((r) => [r.id, certFingerprint(r.certPem)]));
}

function _active(ca: CaState): CaRoot {
  return ca.roots.find((r) => r.id === ca.activeRootId)!;
}

function _names(list: readonly string[]): string {
  const shown = list.slice(0, _NAMES_IN_REASON).join(", ");
  return list.length > _NAMES_IN_REASON
    ? `${shown} and ${list.length - _NAMES_IN_REASON} more`
    : shown;
}
