/**
 * Cluster membership as a control node sees it: the address table of every member (Raft
 * address and API URL), which peers the network keeps links to, the API-URL announcements
 * between nodes, and the leader's flows that add and remove members (address entry, learner,
 * catch-up, promotion). Raft decides who votes; this module knows where they are.
 * @module
 */
import { type NodeId, nodeId } from "../../common/mod.ts";
import type { ConfChange } from "../raft/types.ts";
import { type CaState, isRevoked } from "../ca/mod.ts";
import { BackendError, type Member, NoQuorumError, NotLeaderError } from "../api/backend.ts";
import { encodeMemberEntry, FRAME_ANNOUNCE, type MemberAddress } from "./envelope.ts";
import type { NodeDriver } from "./driver.ts";
import type { Clock, PeerAddr, PeerNet } from "./ports.ts";

/** How often a node tells its peers its API URL. */
export const ANNOUNCE_INTERVAL_MS = 1000;
/** A learner is promoted once it is within this many entries of the leader. */
export const LEARNER_CATCHUP_LAG = 64;

const _enc = new TextEncoder();
const _dec = new TextDecoder();

/** Splits `host:port` (IPv6 in brackets) into its parts. */
export function hostPort(s: string): PeerAddr {
  const i = s.lastIndexOf(":");
  return { hostname: s.slice(0, i).replace(/^\[|\]$/g, ""), port: Number(s.slice(i + 1)) };
}

/** Options of {@linkcode Membership}. */
export interface MembershipOptions {
  /** This node's own address, always known. */
  self: MemberAddress;
  /** Addresses from the snapshot the node started from. */
  restored: MemberAddress[];
  /** The configured initial peers. */
  peers: { id: string; hostname: string; port: number }[];
  /** Trust domain of control identities, when the peer links are mTLS. */
  trustDomain?: string;
  /** The replicated CA, whose revocations cut a member off. */
  ca: () => CaState | null;
}

/** The address table of the cluster's members and the links kept to them. */
export class Membership {
  readonly #self: string;
  readonly #apiUrl: string | null;
  readonly #trustDomain: string | undefined;
  readonly #ca: () => CaState | null;
  readonly #members = new Map<string, MemberAddress>();
  #net: PeerNet | null = null;

  /** Builds the table from the snapshot's addresses, this node's own and the configured peers. */
  constructor(opts: MembershipOptions) {
    this.#self = opts.self.node;
    this.#apiUrl = opts.self.api;
    this.#trustDomain = opts.trustDomain;
    this.#ca = opts.ca;
    for (const m of opts.restored) this.#members.set(m.node, m);
    // Our own address is always known, even before any entry mentions it.
    this.#members.set(opts.self.node, opts.self);
    for (const p of opts.peers) {
      if (!this.#members.has(p.id)) {
        this.#members.set(p.id, { node: p.id, raft: `${p.hostname}:${p.port}`, api: null });
      }
    }
  }

  /** Gives the table the network whose peer set it keeps current. */
  attach(net: PeerNet): void {
    this.#net = net;
  }

  /** Whether `id` is a known member. */
  has(id: string): boolean {
    return this.#members.has(id);
  }

  /** The API URL of member `id`, or null while unknown. */
  apiOf(id: string): string | null {
    return this.#members.get(id)?.api ?? null;
  }

  /** The peers to keep links to: every other member, except control identities revoked. */
  peerMap(): Map<NodeId, PeerAddr> {
    const m = new Map<NodeId, PeerAddr>();
    const td = this.#trustDomain;
    const ca = this.#ca();
    for (const [id, a] of this.#members) {
      if (id === this.#self) continue;
      if (td && ca && isRevoked(ca, `spiffe://${td}/control/${id}`)) continue;
      m.set(nodeId(id), hostPort(a.raft));
    }
    return m;
  }

  /** Hands the current peer set to the network (after a member or revocation change). */
  refreshPeers(): void {
    this.#net?.setPeers(this.peerMap());
  }

  /** The addresses a snapshot records (API URLs are learnt live, never stored). */
  forSnapshot(): MemberAddress[] {
    return [...this.#members.values()].map((m) => ({ ...m, api: null }))
      .sort((a, b) => (a.node < b.node ? -1 : 1));
  }

  /** Applies a committed member-address entry. */
  onMemberEntry(m: MemberAddress): void {
    const prev = this.#members.get(m.node);
    this.#members.set(m.node, { ...m, api: m.api ?? prev?.api ?? null });
    this.refreshPeers();
    // The new member needs our API URL to forward writes; do not make it wait a period.
    if (m.node !== this.#self) this.announceTo(m.node);
  }

  /**
   * Applies a committed membership change. Only a removal drops a transport link; an added
   * node's address came earlier in its member entry and must stay.
   */
  onConfApplied(cc: ConfChange): void {
    if (cc.op === "remove" && cc.node !== this.#self && this.#members.delete(cc.node)) {
      this.refreshPeers();
    }
  }

  /** Takes the addresses of an installed snapshot, keeping API URLs already learnt. */
  onRestore(members: MemberAddress[]): void {
    for (const m of members) {
      const prev = this.#members.get(m.node);
      this.#members.set(m.node, { ...m, api: prev?.api ?? m.api });
    }
    this.refreshPeers();
  }

  /** The members of a Raft configuration with their addresses, sorted by id. */
  list(conf: { voters: readonly string[]; learners: readonly string[] }): Member[] {
    const out: Member[] = [];
    for (
      const [id, voter] of [
        ...conf.voters.map((v) => [v, true] as const),
        ...conf.learners.map((v) => [v, false] as const),
      ]
    ) {
      const m = this.#members.get(id);
      out.push({ node: id, address: m?.raft ?? "", api: m?.api ?? null, voter });
    }
    return out.sort((a, b) => (a.node < b.node ? -1 : 1));
  }

  // ---------------------------------------------------------------- API URL announcements

  #announceFrame(): Uint8Array {
    const body = _enc.encode(JSON.stringify({ api: this.#apiUrl }));
    const frame = new Uint8Array(body.length + 1);
    frame[0] = FRAME_ANNOUNCE;
    frame.set(body, 1);
    return frame;
  }

  /** Tells every other member this node's API URL. */
  announce(): void {
    if (!this.#net) return;
    const frame = this.#announceFrame();
    for (const id of this.#members.keys()) {
      if (id !== this.#self) this.#net.send(nodeId(id), frame);
    }
  }

  /** Tells one member this node's API URL. */
  announceTo(id: string): void {
    this.#net?.send(nodeId(id), this.#announceFrame());
  }

  /** Takes a peer's announcement; throws on a malformed frame. */
  onAnnounce(from: NodeId, frame: Uint8Array): void {
    const info = JSON.parse(_dec.decode(frame.subarray(1))) as { api?: unknown };
    const m = this.#members.get(from);
    if (m && typeof info.api === "string" && info.api.length < 300) {
      // A peer we knew no URL for has just (re)started: it does not know ours either.
      const fresh = m.api !== info.api;
      m.api = info.api;
      if (fresh) this.announceTo(from);
    }
  }
}

/** Adds a member as the leader: address entry, learner, catch-up, then promotion. */
export async function addMember(
  driver: NodeDriver,
  clock: Clock,
  m: Member,
  signal: AbortSignal,
): Promise<void> {
  driver.checkUsable();
  if (driver.raft.status().role !== "leader") throw new NotLeaderError();
  const conf = driver.raft.status().conf;
  if (conf.voters.includes(nodeId(m.node))) {
    throw new BackendError(409, "member_exists", `member ${m.node} already exists`);
  }
  await driver.proposeData(
    encodeMemberEntry({ node: m.node, raft: m.address, api: m.api ?? null }),
    signal,
  );
  if (!driver.raft.status().conf.learners.includes(nodeId(m.node))) {
    await driver.proposeConf("add_learner", m.node, signal);
  }
  // Promote only once the learner has caught up, so adding a member never stalls commits.
  while (!signal.aborted) {
    const st = driver.raft.status();
    if (st.role !== "leader") throw new NotLeaderError();
    const match = st.progress?.[m.node]?.match ?? 0;
    if (st.lastIndex - match <= LEARNER_CATCHUP_LAG) {
      const r = driver.raft.proposeConfChange({ op: "promote", node: nodeId(m.node) });
      if (r.ok) {
        await driver.waitConf(r, signal, "the promotion was not committed in time");
        return;
      }
      if (r.reason !== "learner_behind" && r.reason !== "conf_change_pending") {
        throw driver.proposeFailure(r);
      }
    }
    await clock.sleep(50);
  }
  throw new NoQuorumError(`member ${m.node} did not catch up in time; it stays a learner`);
}

/** Removes a member as the leader. */
export async function removeMember(
  driver: NodeDriver,
  node: string,
  signal: AbortSignal,
): Promise<void> {
  driver.checkUsable();
  if (driver.raft.status().role !== "leader") throw new NotLeaderError();
  await driver.proposeConf("remove", node, signal);
}
