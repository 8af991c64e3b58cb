/**
 * An in-memory {@linkcode ControlBackend} for tests: commands apply directly to a
 * {@linkcode RegistryState}, with switches for leadership and quorum loss.
 * @module
 */
import {
  type ApplyResult,
  decodeCommand,
  encodeCommand,
  IndexWatcher,
  type RegistryCommand,
  RegistryState,
} from "../../control/registry/mod.ts";
import {
  BackendError,
  type ControlBackend,
  type HealthInfo,
  type HeartbeatItem,
  type Member,
  NotLeaderError,
} from "../../control/api/backend.ts";
import type { ForwardedCaller } from "../../control/auth/mod.ts";

/** Options of {@linkcode FakeBackend}. */
export interface FakeBackendOptions {
  /** Node id. @default "cp-1" */
  node?: string;
  /** Whether this node is leader. @default true */
  leader?: boolean;
  /** Leader's node id when this node is a follower. @default null */
  leaderNode?: string | null;
  /** Leader API base URL when this node is a follower. @default null */
  leaderApi?: string | null;
}

/** A single-process backend whose writes commit instantly unless `quorum` is false. */
export class FakeBackend implements ControlBackend {
  readonly watcher = new IndexWatcher();
  readonly node: string;
  /** Whether this node acts as leader. */
  leader: boolean;
  /** Leader id reported by health when following. */
  leaderNode: string | null;
  /** Leader API URL used for forwarding when following. */
  leaderUrl: string | null;
  /** Ms since a follower last heard from its leader (null: never). */
  lastContactMs: number | null = 100;
  /** When false, proposals and read barriers never complete (and ignore abort signals). */
  quorum = true;
  /** Every heartbeat batch received. */
  readonly heartbeats: HeartbeatItem[][] = [];
  /** Every command proposed (committed or not). */
  readonly proposed: RegistryCommand[] = [];
  /** The caller passed with each proposal, in the same order as `proposed`. */
  readonly callers: (ForwardedCaller | undefined)[] = [];
  #members: Member[];
  #state = new RegistryState();
  #log = 0;

  /** Creates the backend. */
  constructor(opts: FakeBackendOptions = {}) {
    this.node = opts.node ?? "cp-1";
    this.leader = opts.leader ?? true;
    this.leaderNode = opts.leaderNode ?? (this.leader ? this.node : null);
    this.leaderUrl = opts.leaderApi ?? null;
    this.#members = [{ node: this.node, address: "127.0.0.1:7401", api: null, voter: true }];
  }

  health(): HealthInfo {
    return {
      node: this.node,
      role: this.leader ? "leader" : "follower",
      leader: this.leader ? this.node : this.leaderNode,
      term: 1,
      commit_index: this.#log,
      applied_index: this.#state.appliedIndex,
      last_contact_ms: this.leader ? 0 : this.lastContactMs,
    };
  }

  sinceLeaderContact(): number {
    return this.leader ? 0 : this.lastContactMs ?? Infinity;
  }

  propose(
    cmd: RegistryCommand,
    _signal: AbortSignal,
    caller?: ForwardedCaller,
  ): Promise<ApplyResult> {
    this.proposed.push(cmd);
    this.callers.push(caller);
    if (!this.leader) return Promise.reject(new NotLeaderError());
    if (!this.quorum) return new Promise(() => {});
    return Promise.resolve(this.applyDirect(cmd));
  }

  /** Appends and applies a command as if it was committed, round-tripping its encoding. */
  applyDirect(cmd: RegistryCommand): ApplyResult {
    this.#log++;
    const r = this.#state.apply(this.#log, decodeCommand(encodeCommand(cmd)));
    this.watcher.notify(this.#state.index);
    return r;
  }

  linearizableRead(_signal: AbortSignal): Promise<void> {
    if (!this.leader) return Promise.reject(new NotLeaderError());
    if (!this.quorum) return new Promise(() => {});
    return Promise.resolve();
  }

  state(): RegistryState {
    return this.#state;
  }

  leaderApi(): string | null {
    return this.leader ? null : this.leaderUrl;
  }

  isLeader(): boolean {
    return this.leader;
  }

  members(): Member[] {
    return [...this.#members];
  }

  addMember(m: Member, _signal: AbortSignal): Promise<void> {
    if (!this.leader) return Promise.reject(new NotLeaderError());
    if (!this.quorum) return new Promise(() => {});
    if (this.#members.some((x) => x.node === m.node)) {
      return Promise.reject(
        new BackendError(409, "member_exists", `member ${m.node} already exists`),
      );
    }
    this.#members.push({ voter: true, api: null, ...m });
    return Promise.resolve();
  }

  removeMember(node: string, _signal: AbortSignal): Promise<void> {
    if (!this.leader) return Promise.reject(new NotLeaderError());
    if (!this.quorum) return new Promise(() => {});
    this.#members = this.#members.filter((m) => m.node !== node);
    return Promise.resolve();
  }

  heartbeat(items: readonly HeartbeatItem[]): void {
    if (!this.leader) throw new NotLeaderError();
    this.heartbeats.push([...items]);
  }
}
