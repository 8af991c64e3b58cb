/**
 * The leader's side of a CA rotation nobody has to remember: on every tick it asks
 * `planRotation` what comes next (start by policy, activate, pause, finish) and commits the
 * result as `put_ca` with a compare-and-set on the whole CA state. Progress comes from the
 * proxies' heartbeat reports (`TrustReports`) and, for control nodes, from Raft: a follower
 * whose log has reached the entry that began the phase holds that CA state.
 * @module
 */
import type { LogFields, Logger } from "../../common/mod.ts";
import {
  applyRotationStep,
  beginRotation,
  caDigest,
  type CaState,
  instanceMember,
  membersOnIntermediate,
  planRotation,
  rootFingerprints,
  type RotationPolicy,
  type RotationProgress,
  type RotationStep,
  TrustReports,
} from "../ca/mod.ts";
import {
  type ApplyResult,
  type RegistryState,
  validateCommand,
  type ValidatedCommand,
} from "../registry/mod.ts";
import type { RotationStatusView } from "../api/backend.ts";

/** How often the leader looks at the rotation, in ms. */
export const ROTATION_CHECK_INTERVAL_MS = 1_000;
/** Longest wait for a rotation step to commit, in ms. */
export const ROTATION_COMMIT_TIMEOUT_MS = 10_000;

const _DONE: Promise<void> = Promise.resolve();
/** Rotated-out intermediates whose mark is remembered (the CA keeps at most 16). */
const _MAX_RETIRED_MARKS = 64;

/** The default policy: no automatic start, one hour for stragglers, then go on. */
export function defaultRotationPolicy(leafTtlMs: number): RotationPolicy {
  return { rotateBeforeExpiryMs: null, trustWaitMs: 3_600_000, onStuck: "proceed", leafTtlMs };
}

/** What the driver needs from the control node. */
export interface RotationDriverDeps {
  /** This node's id. */
  self: string;
  /** The applied registry state. */
  state(): RegistryState;
  /** Raft's view: role, applied index, voters/learners and (on a leader) each peer's match. */
  raft(): {
    role: string;
    applied: number;
    conf: { voters: readonly string[]; learners: readonly string[] };
    progress?: Record<string, { match: number }>;
  };
  /** Proposes a command and waits for its applied result. */
  propose(cmd: ValidatedCommand, signal: AbortSignal): Promise<ApplyResult>;
  /** Rotation policy (control.yaml `ca`). */
  policy: RotationPolicy;
  /** Logger. */
  log: Logger;
  /** Clock. @default Date.now */
  now?: () => number;
}

/** The rotation as `GET /v1/ca/rotation` shows it (the API's view of it). */
export type RotationStatus = RotationStatusView;

/** Drives rotations on the leader; followers only keep the reports they are sent. */
export class RotationDriver {
  readonly #d: RotationDriverDeps;
  readonly #now: () => number;
  readonly reports = new TrustReports();
  #lastCheck = 0;
  #busy = false;
  /** Applied index when this leader first saw the current phase: control nodes past it hold it. */
  #mark: { key: string; index: number } | null = null;
  /** Applied index when this node first looked at each rotated-out intermediate, by fingerprint. */
  readonly #retiredMarks = new Map<string, number>();

  /** Creates the driver; call {@linkcode RotationDriver.tick} regularly. */
  constructor(deps: RotationDriverDeps) {
    this.#d = deps;
    this.#now = deps.now ?? Date.now;
  }

  /**
   * Looks at the rotation at most once per interval and commits the next step, if any.
   * Resolves when that step has been tried (never rejects).
   */
  tick(): Promise<void> {
    const now = this.#now();
    if (this.#busy || now - this.#lastCheck < ROTATION_CHECK_INTERVAL_MS) return _DONE;
    this.#lastCheck = now;
    if (this.#d.raft().role !== "leader") {
      this.#mark = null;
      return _DONE;
    }
    const ca = this.#d.state().ca();
    if (ca === null) return _DONE;
    const step = planRotation(ca, this.progress(ca), this.#d.policy, now);
    if (step.kind === "none") return _DONE;
    this.#busy = true;
    return this.#commit(ca, step, now).finally(() => (this.#busy = false));
  }

  /** Who is missing in the current phase (empty lists when no driven rotation runs). */
  progress(ca: CaState): RotationProgress {
    const rot = ca.rotation;
    if (rot === undefined) return { missingTrust: [], missingLeaves: [] };
    const newFp = rootFingerprints(ca).get(rot.newRootId);
    const missing: string[] = [];
    for (const inst of this.#d.state().allInstances()) {
      // A critical instance's proxy is most likely gone: it renews or re-enrols when it returns.
      if (inst.health === "critical") continue;
      const m = instanceMember(inst.service, inst.id);
      const r = this.reports.get(m);
      const ok = rot.phase === "trust"
        ? r !== undefined && newFp !== undefined && r.roots.includes(newFp)
        : r !== undefined && r.leafRoot === newFp;
      if (!ok) missing.push(m);
    }
    const raft = this.#d.raft();
    const key = `${rot.newRootId}:${rot.phase}`;
    if (this.#mark?.key !== key) this.#mark = { key, index: raft.applied };
    for (const node of [...raft.conf.voters, ...raft.conf.learners]) {
      if (node === this.#d.self) continue;
      const match = raft.progress?.[node]?.match ?? 0;
      if (match < this.#mark.index) missing.push(`control/${node}`);
    }
    missing.sort();
    return rot.phase === "trust"
      ? { missingTrust: missing, missingLeaves: [] }
      : { missingTrust: [], missingLeaves: missing };
  }

  /**
   * The members whose certificate may still come from the intermediate with SHA-256
   * `fingerprint`: proxies whose last report names it or names no issuer at all, and control
   * nodes whose log has not reached the index this node had applied when it first saw the
   * intermediate rotated out (a control node re-issues its own leaf when it applies a new
   * intermediate). Sorted; empty when every member has moved.
   */
  onIntermediate(fingerprint: string): string[] {
    const raft = this.#d.raft();
    let mark = this.#retiredMarks.get(fingerprint);
    if (mark === undefined) {
      // The install is at or before what this node has applied, since its state shows it.
      if (this.#retiredMarks.size >= _MAX_RETIRED_MARKS) this.#retiredMarks.clear();
      mark = raft.applied;
      this.#retiredMarks.set(fingerprint, mark);
    }
    const members = new Map<string, string | null | undefined>();
    for (const inst of this.#d.state().allInstances()) {
      if (inst.health === "critical") continue;
      const m = instanceMember(inst.service, inst.id);
      members.set(m, this.reports.get(m)?.leafIssuer);
    }
    for (const node of [...raft.conf.voters, ...raft.conf.learners]) {
      if (node === this.#d.self) continue;
      const match = raft.progress?.[node]?.match ?? 0;
      members.set(`control/${node}`, match >= mark ? null : undefined);
    }
    return membersOnIntermediate(members, fingerprint);
  }

  /** The rotation as this node sees it. */
  status(): RotationStatus | null {
    const ca = this.#d.state().ca();
    if (ca === null) return null;
    const p = this.progress(ca);
    let members = 0;
    for (const i of this.#d.state().allInstances()) if (i.health !== "critical") members++;
    const raft = this.#d.raft();
    members += raft.conf.voters.length + raft.conf.learners.length - 1;
    return {
      rotation: ca.rotation ?? null,
      roots: ca.roots.map((r) => r.id),
      missing: [...p.missingTrust, ...p.missingLeaves],
      members,
      leader: raft.role === "leader",
      policy: this.#d.policy,
    };
  }

  async #commit(ca: CaState, step: RotationStep, now: number): Promise<void> {
    const log = this.#d.log;
    try {
      const next = step.kind === "start"
        ? await beginRotation(ca, { now, trigger: "policy" })
        : applyRotationStep(ca, step, now);
      if (next === ca) return;
      const cmd = validateCommand({
        type: "put_ca",
        ca: next as unknown as Record<string, unknown>,
        expect_root_id: ca.activeRootId,
        expect_digest: caDigest(ca),
      });
      const r = await this.#d.propose(cmd, AbortSignal.timeout(ROTATION_COMMIT_TIMEOUT_MS));
      if (!r.ok) {
        log.info("CA rotation step not applied; will look again", {
          step: step.kind,
          code: r.error.code,
          reason: r.error.message,
        });
        return;
      }
      const fields: LogFields = {
        step: step.kind,
        active_root_id: next.activeRootId,
        trusted_roots: next.roots.map((x) => x.id).join(","),
      };
      if (step.kind === "start") fields.reason = step.reason;
      if ((step.kind === "activate" || step.kind === "finish") && step.skipped.length > 0) {
        fields.went_on_without = step.skipped.join(",");
        log.warn("CA rotation went on without members that had not caught up", fields);
      } else if (step.kind === "pause") {
        log.error(`CA rotation paused: ${step.reason}`, fields);
      } else {
        log.info("CA rotation step committed", fields);
      }
    } catch (e) {
      log.warn("CA rotation step did not commit; will retry", { reason: (e as Error).message });
    }
  }
}
