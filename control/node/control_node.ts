/**
 * A running control node: the API's {@linkcode ControlBackend}, assembled from the Ready loop
 * ({@linkcode NodeDriver}), the member table ({@linkcode Membership}), the one-time cluster
 * set-up ({@linkcode Bootstrapper}), write relaying to the leader and the leader's duties
 * (instance leases, CA rotation). {@linkcode ControlNode.start} wires the real disk, mTLS
 * transport and clock; {@linkcode ControlNode.startWith} takes any ports, so a simulation can
 * run the same node on a fake disk and network.
 * @module
 */
import { type NodeId, nodeId } from "../../common/mod.ts";
import {
  type ApplyResult,
  decodeCommand,
  encodeCommand,
  type IndexWatcher,
  LeaseTracker,
  MAX_HEALTH_CHANGES_PER_COMMAND,
  type RegistryState,
  type ValidatedCommand,
} from "../registry/mod.ts";
import { type CaState, instanceMember, isRevoked, type TrustReport } from "../ca/mod.ts";
import {
  defaultRotationPolicy,
  RotationDriver,
  type RotationStatus,
} from "./ca_rotation_driver.ts";
import type { ForwardedCaller } from "../auth/mod.ts";
import {
  BackendError,
  type ControlBackend,
  type HealthInfo,
  type HeartbeatItem,
  type Member,
  NotLeaderError,
  type WriteForwardStats,
} from "../api/backend.ts";
import { DenoFs } from "../storage/fs.ts";
import { DurableLog } from "./durable_log.ts";
import { DataDirLock } from "../storage/dir_lock.ts";
import { FRAME_ANNOUNCE } from "./envelope.ts";
import {
  decodeForwardRequest,
  decodeForwardResult,
  encodeForwardRequest,
  encodeForwardResult,
  FORWARD_TIMEOUT_MS,
  type ForwardOutcome,
  forwardRefusal,
  ForwardTable,
  FRAME_FORWARD,
  FRAME_FORWARD_RESULT,
} from "./write_relay.ts";
import { NodeDriver } from "./driver.ts";
import { addMember, ANNOUNCE_INTERVAL_MS, Membership, removeMember } from "./membership.ts";
import { Bootstrapper, foundCluster } from "./bootstrap.ts";
import { type Clock, type NodePorts, type PeerNet, systemClock } from "./ports.ts";
import { transportNet } from "./transport_net.ts";
import type { ControlNodeOptions } from "./options.ts";

/** How often the leader turns missed heartbeats into committed health changes. */
export const LEASE_CHECK_INTERVAL_MS = 500;

/** What a follower receives for a forward the leader could not commit. */
function _forwardFailure(e: Error): ForwardOutcome {
  if (e instanceof BackendError) {
    // The follower rebuilds a plain BackendError, so a `not_leader` from here is answered
    // with 503 and never forwarded a second time.
    return { ok: false, status: e.status, code: e.code, message: e.message };
  }
  return { ok: false, status: 503, code: "internal", message: `the leader failed: ${e.message}` };
}

/** A running control node. */
export class ControlNode implements ControlBackend {
  readonly id: NodeId;
  readonly watcher: IndexWatcher;
  readonly #opts: ControlNodeOptions;
  readonly #clock: Clock;
  readonly #driver: NodeDriver;
  readonly #members: Membership;
  readonly #boot: Bootstrapper;
  /** The claim on the data directory, given up by close(). */
  #dirLock: DataDirLock | null = null;
  #net!: PeerNet;
  readonly #leases: LeaseTracker;
  readonly #forwards: ForwardTable;
  readonly #stopTimers: (() => void)[] = [];
  #closed = false;
  /** The CA last handed to the TLS identity, so only changes reach it. */
  #identityCa: CaState | null = null;
  /** Carries CA rotations through while this node leads. */
  readonly #rotation: RotationDriver;

  private constructor(opts: ControlNodeOptions, driver: NodeDriver, clock: Clock) {
    this.#opts = opts;
    this.#clock = clock;
    this.#driver = driver;
    this.id = driver.id;
    this.watcher = driver.watcher;
    this.#forwards = new ForwardTable({ now: () => clock.now() });
    this.#members = new Membership({
      self: { node: opts.node, raft: opts.raftAdvertise, api: opts.apiUrl },
      restored: driver.snapshotMembers(),
      peers: opts.peers,
      trustDomain: opts.tls?.identity.trustDomain,
      ca: () => this.#driver.state.ca(),
    });
    this.#leases = new LeaseTracker({ ttlMs: opts.leaseTtlMs });
    this.#rotation = new RotationDriver({
      self: opts.node,
      state: () => this.#driver.state,
      raft: () => this.#driver.raft.status(),
      propose: (cmd, signal) => this.#driver.proposeChecked(encodeCommand(cmd), cmd, signal),
      policy: opts.caRotation ?? defaultRotationPolicy(24 * 3_600_000),
      log: opts.log.with({ component: "ca_rotation" }),
      now: () => clock.now(),
    });
    this.#boot = new Bootstrapper({
      node: opts.node,
      trustDomain: opts.trustDomain === undefined ? opts.clusterId : opts.trustDomain,
      seedCa: opts.tls?.seedCa,
      tokenHash: opts.bootstrapTokenHash ?? null,
      state: () => this.#driver.state,
      role: () => this.#driver.role,
      raftStatus: () => this.#driver.raft.status(),
      hasMember: (id) => this.#members.has(id),
      proposeHere: (cmd, signal) => this.#driver.proposeChecked(encodeCommand(cmd), cmd, signal),
      propose: (cmd, signal) => this.propose(cmd, signal),
      closed: () => this.#closed,
      clock,
      log: opts.log,
    });
  }

  /** Opens the data directory on the real disk, restores state, joins the peers and ticks. */
  static async start(opts: ControlNodeOptions): Promise<ControlNode> {
    await Deno.mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
    // One owner per directory, or two WAL writers corrupt each other's acknowledged records.
    const lock = await DataDirLock.acquire(opts.dataDir);
    try {
      const node = await ControlNode.startWith(opts, {
        fs: new DenoFs(),
        net: transportNet(opts),
        clock: systemClock,
      });
      node.#dirLock = lock;
      return node;
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  /** Starts a node on the given disk, network and clock (the caller owns the directory). */
  static async startWith(opts: ControlNodeOptions, ports: NodePorts): Promise<ControlNode> {
    const restored = await DurableLog.open(opts.dataDir, opts.log, ports.fs);
    let storage = restored.storage;
    if (restored.fresh && !opts.join) {
      storage = await foundCluster(opts, restored.durable, opts.log);
    }
    const driver = new NodeDriver(
      {
        node: opts.node,
        electionTicks: opts.electionTicks,
        snapshotEvery: opts.snapshotEvery,
        random: opts.random ?? Math.random,
        log: opts.log,
        clock: ports.clock,
      },
      storage,
      restored.durable,
    );
    const node = new ControlNode(opts, driver, ports.clock);
    node.#syncIdentityCa();
    node.#net = await ports.net(node.#members.peerMap(), (from, f) => driver.onFrame(from, f));
    node.#members.attach(node.#net);
    driver.attach({
      onRoleChange: (role, leader, was) => node.#onRoleChange(role, leader, was),
      onMemberEntry: (m) => node.#members.onMemberEntry(m),
      onConfApplied: (cc) => node.#members.onConfApplied(cc),
      onRestore: (m) => node.#members.onRestore(m),
      onApplied: () => node.#syncIdentityCa(),
      snapshotMembers: () => node.#members.forSnapshot(),
      onFrame: (from, f) => node.#onFrame(from, f),
      onFatal: (e) => {
        node.#forwards.failAll(e);
        return node.close();
      },
    }, node.#net);
    const clock = ports.clock;
    node.#stopTimers.push(clock.every(opts.tickMs, () => node.#tick()));
    node.#stopTimers.push(clock.every(ANNOUNCE_INTERVAL_MS, () => node.#announce()));
    node.#stopTimers.push(clock.every(LEASE_CHECK_INTERVAL_MS, () => node.#checkLeases()));
    node.#announce();
    driver.kick();
    opts.log.info("control node started", {
      node: opts.node,
      raft: opts.raftAdvertise,
      api: opts.apiUrl,
      applied: driver.state.appliedIndex,
    });
    return node;
  }

  /** Resolves with the error that stopped this node (a storage failure or broken invariant). */
  get failed(): Promise<Error> {
    return this.#driver.failed;
  }

  /** The Raft address the transport actually listens on (useful with port 0). */
  get raftAddr(): { hostname: string; port: number } {
    return this.#net.addr;
  }

  // ---------------------------------------------------------------- inputs

  #tick(): void {
    if (this.#closed) return;
    this.#forwards.expire();
    this.#driver.tick();
    this.#boot.tick();
    void this.#rotation.tick();
  }

  #announce(): void {
    if (!this.#closed) this.#members.announce();
  }

  #onFrame(from: NodeId, frame: Uint8Array): void {
    const type = frame[0];
    if (type === FRAME_FORWARD) {
      this.#onForward(from, frame);
    } else if (type === FRAME_FORWARD_RESULT) {
      const { id, outcome } = decodeForwardResult(frame);
      this.#forwards.settle(from, id, outcome);
    } else if (type === FRAME_ANNOUNCE) {
      this.#members.onAnnounce(from, frame);
    }
  }

  #onRoleChange(role: string, leader: NodeId | null, wasLeader: boolean): void {
    if (this.#forwards.size > 0) {
      this.#forwards.failExcept(
        role === "leader" ? null : leader,
        "the leader changed while a forwarded write was in flight; it may or may not be applied",
      );
    }
    // Followers forward to the leader's API URL: a new leader tells everyone at once.
    if (role === "leader" && !wasLeader) this.#announce();
    if (role === "leader" && !wasLeader) this.#leases.becameLeader(this.#clock.now());
    if (role !== "leader" && wasLeader) this.#leases.clear();
  }

  /**
   * A follower's forwarded write. The bytes come from outside this process, so they are
   * validated like an API body; the answer leaves only once the entry is applied here (or
   * refused), exactly as the HTTP path would answer.
   */
  #onForward(from: NodeId, frame: Uint8Array): void {
    const { id, caller, command } = decodeForwardRequest(frame);
    const reply = (o: ForwardOutcome) => this.#net.send(from, encodeForwardResult(id, o));
    let cmd: ValidatedCommand;
    try {
      cmd = decodeCommand(command);
    } catch (e) {
      reply({ ok: false, status: 400, code: "invalid_command", message: (e as Error).message });
      return;
    }
    // The follower checked the caller against its own copy of the tokens; the leader's copy is
    // authoritative (a token revoked a moment ago must not write through a lagging follower).
    const state = this.#driver.state;
    const ca = state.ca();
    const refused = caller?.peer && ca && isRevoked(ca, caller.peer)
      ? {
        ok: false as const,
        status: 403 as const,
        code: "revoked",
        message: `${caller.peer} is revoked`,
      }
      : forwardRefusal(cmd, caller, {
        tokens: state.operatorTokens(),
        now: this.#clock.now(),
      });
    if (refused) {
      reply(refused);
      return;
    }
    let p: Promise<ApplyResult>;
    try {
      // Copied: the entry outlives the transport's read buffer.
      p = this.#driver.proposeChecked(
        command.slice(),
        cmd,
        this.#clock.timeout(FORWARD_TIMEOUT_MS),
      );
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(
      (result) => reply({ ok: true, result }),
      (e) => reply(_forwardFailure(e as Error)),
    );
  }

  #checkLeases(): void {
    if (this.#closed || this.#driver.role !== "leader") return;
    // Instances carry service, id and health themselves: walked in place, nothing copied.
    const changes = this.#leases.expired(this.#clock.now(), this.#driver.state.allInstances());
    if (changes.length === 0) return;
    // A rack going down expires thousands at once: one entry per MAX_HEALTH_CHANGES_PER_COMMAND,
    // since a longer one is refused by every node and would be retried, refused, for good.
    let proposed = false;
    for (let i = 0; i < changes.length; i += MAX_HEALTH_CHANGES_PER_COMMAND) {
      const batch = changes.slice(i, i + MAX_HEALTH_CHANGES_PER_COMMAND);
      const r = this.#driver.raft.propose(encodeCommand({ type: "set_health", changes: batch }));
      proposed = r.ok || proposed;
    }
    if (proposed) this.#driver.kick();
  }

  /**
   * Hands an applied CA change (the seed replaced, a rotation, a revocation) to the TLS
   * identity: new connections then use the new leaf, bundle and revocation list. The registry
   * stores a new frozen object per change, so comparing references finds every change.
   */
  #syncIdentityCa(): void {
    const identity = this.#opts.tls?.identity;
    const ca = this.#driver.state.ca();
    if (!identity || ca === null || ca === this.#identityCa) return;
    this.#identityCa = ca;
    identity.updateCa(ca).catch((e) => {
      this.#opts.log.error("TLS identity could not take the new CA", { error: e as Error });
    });
    // A revoked control node is refused on new connections; cut the open ones too, so it is
    // contained at once rather than when its links next break.
    this.#members.refreshPeers();
  }

  // ---------------------------------------------------------------- ControlBackend

  /** See {@linkcode ControlBackend.health}. */
  health(): HealthInfo {
    const st = this.#driver.raft.status();
    const learner = st.conf.learners.includes(this.id);
    return {
      node: this.#opts.node,
      role: learner ? "learner" : st.role === "pre_candidate" ? "candidate" : st.role,
      leader: st.leader,
      term: st.term,
      commit_index: st.commit,
      // Log entries without registry effect (leader no-ops, member entries) count as applied,
      // so a converged cluster reports applied_index == commit_index.
      applied_index: Math.max(st.applied, this.#driver.state.appliedIndex),
      last_contact_ms: _finiteOrNull(Math.round(this.#driver.sinceLeaderContact())),
    };
  }

  /** See {@linkcode ControlBackend.sinceLeaderContact}. */
  sinceLeaderContact(): number {
    return this.#driver.sinceLeaderContact();
  }

  /**
   * See {@linkcode ControlBackend.propose}. On a follower the command goes to the leader over
   * the peer transport (one hop, answered after the leader applied it); only when no leader is
   * known does this reject with {@linkcode NotLeaderError}, so the API can try HTTP.
   */
  propose(
    cmd: ValidatedCommand,
    signal: AbortSignal,
    caller?: ForwardedCaller,
  ): Promise<ApplyResult> {
    this.#driver.checkUsable();
    const st = this.#driver.raft.status();
    if (st.role === "leader") return this.#driver.proposeChecked(encodeCommand(cmd), cmd, signal);
    const leader = st.leader;
    if (!leader || leader === this.id || !this.#members.has(leader)) {
      return Promise.reject(new NotLeaderError());
    }
    const bytes = encodeCommand(cmd);
    return this.#forwards.start(
      leader,
      signal,
      (id) => this.#net.send(leader, encodeForwardRequest(id, bytes, caller)),
      () => new NotLeaderError(`the link to the leader ${leader} is not accepting frames`),
    );
  }

  /** See {@linkcode ControlBackend.linearizableRead}. */
  linearizableRead(signal: AbortSignal): Promise<void> {
    return this.#driver.linearizableRead(signal);
  }

  /** See {@linkcode ControlBackend.state}. */
  state(): RegistryState {
    return this.#driver.state;
  }

  /** See {@linkcode ControlBackend.leaderApi}. */
  leaderApi(): string | null {
    const l = this.#driver.raft.status().leader;
    if (!l || l === this.id) return null;
    return this.#members.apiOf(l);
  }

  /** See {@linkcode ControlBackend.isLeader}. */
  isLeader(): boolean {
    return this.#driver.raft.status().role === "leader";
  }

  /** See {@linkcode ControlBackend.members}. */
  members(): Member[] {
    return this.#members.list(this.#driver.raft.status().conf);
  }

  /** See {@linkcode ControlBackend.addMember}: address entry, learner, catch-up, promotion. */
  addMember(m: Member, signal: AbortSignal): Promise<void> {
    return addMember(this.#driver, this.#clock, m, signal);
  }

  /** See {@linkcode ControlBackend.removeMember}. */
  removeMember(node: string, signal: AbortSignal): Promise<void> {
    return removeMember(this.#driver, node, signal);
  }

  /** See {@linkcode ControlBackend.heartbeat}. */
  heartbeat(items: readonly HeartbeatItem[]): void {
    if (!this.isLeader()) throw new NotLeaderError();
    const now = this.#clock.now();
    for (const i of items) this.#leases.heartbeat(i.service, i.id, i.health, now);
  }

  /** See {@linkcode ControlBackend.reportTrust}. */
  reportTrust(items: readonly HeartbeatItem[], report: TrustReport): void {
    for (const i of items) this.#rotation.reports.record(instanceMember(i.service, i.id), report);
  }

  /** See {@linkcode ControlBackend.membersOnIntermediate}. */
  membersOnIntermediate(fingerprint: string): string[] {
    return this.#rotation.onIntermediate(fingerprint);
  }

  /** See {@linkcode ControlBackend.rotationStatus}. */
  rotationStatus(): RotationStatus | null {
    return this.#rotation.status();
  }

  /** See {@linkcode ControlBackend.writeForwardStats}. */
  writeForwardStats(): WriteForwardStats {
    return this.#forwards.stats();
  }

  /** Hands leadership to the most caught-up voter and waits (bounded) until it took over. */
  async handOff(timeoutMs: number): Promise<boolean> {
    const raft = this.#driver.raft;
    const st = raft.status();
    if (st.role !== "leader" || !st.progress) return false;
    let best: string | null = null;
    let bestMatch = -1;
    for (const v of st.conf.voters) {
      if (v === this.id) continue;
      const p = st.progress[v];
      if (p && p.match > bestMatch) {
        best = v;
        bestMatch = p.match;
      }
    }
    if (!best) return false;
    raft.transferLeadership(nodeId(best));
    this.#driver.kick();
    const deadline = this.#clock.now() + timeoutMs;
    while (this.#clock.now() < deadline) {
      await this.#clock.sleep(20);
      if (raft.status().role !== "leader") return true;
    }
    return false;
  }

  /** Stops timers, the transport and the WAL; pending callers get 503. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const stop of this.#stopTimers) stop();
    const err = new BackendError(503, "shutting_down", "control node is shutting down");
    this.#driver.stop(err);
    this.#forwards.failAll(err);
    await this.#net?.close();
    // Let an in-flight Ready finish its fsync before the WAL closes under it.
    await this.#driver.closeLog();
    this.#dirLock?.release();
  }
}

/** `n`, or null when it is not finite (JSON has no Infinity). */
function _finiteOrNull(n: number): number | null {
  return Number.isFinite(n) ? n : null;
}
