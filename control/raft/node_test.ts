import { type NodeId, nodeId } from "../../common/ids.ts";
import { MESSAGE_TYPES } from "./codec.ts";
import { RaftNode } from "./node.ts";
import { MemoryStorage } from "./storage.ts";
import type { Entry, Message, Ready } from "./types.ts";

const ids = [nodeId("1"), nodeId("2"), nodeId("3")];
const enc = new TextEncoder();

function mkNode(
  id: NodeId,
  storage: MemoryStorage,
  extra: Partial<ConstructorParameters<typeof RaftNode>[0]> = {},
): RaftNode {
  let x = 12345 + Number(id);
  return new RaftNode({
    id,
    electionTicks: 10,
    heartbeatTicks: 1,
    preVote: true,
    checkQuorum: true,
    maxInflightMsgs: 4,
    maxEntriesPerMsg: 8,
    random: () => ((x = (x * 1103515245 + 12345) % 2147483648) / 2147483648),
    storage,
    ...extra,
  });
}

function persist(s: MemoryStorage, rd: Ready): void {
  if (rd.snapshot) s.applySnapshot(rd.snapshot);
  s.append(rd.entries);
  if (rd.hardState) s.setHardState(rd.hardState);
}

Deno.test("RaftNode: a single-voter cluster elects itself and commits alone", () => {
  const s = MemoryStorage.bootstrap({ voters: [ids[0]!], learners: [] });
  const n = mkNode(ids[0]!, s);
  for (let i = 0; i < 30 && n.status().role !== "leader"; i++) n.tick();
  const r = n.propose(enc.encode("x"));
  if (!r.ok) throw new Error(`propose failed: ${JSON.stringify(r)}`);
  const rd = n.ready();
  persist(s, rd);
  const applied = rd.committedEntries.map((e) => new TextDecoder().decode(e.data));
  n.advance();
  if (!applied.includes("x")) throw new Error(`x not committed: ${JSON.stringify(applied)}`);
  n.readIndex("q");
  const rd2 = n.ready();
  if (rd2.readStates[0]?.index !== r.index) {
    throw new Error(`read index: got ${JSON.stringify(rd2.readStates)}, want index ${r.index}`);
  }
});

Deno.test("RaftNode.propose() refuses on followers and when too many entries are uncommitted", () => {
  const conf = { voters: ids, learners: [] };
  const n = mkNode(ids[0]!, MemoryStorage.bootstrap(conf), { maxUncommittedEntries: 3 });
  const r = n.propose(enc.encode("x"));
  if (r.ok || r.reason !== "not_leader") throw new Error(`got ${JSON.stringify(r)}`);
  n.campaign(); // pre-vote round
  for (const from of [ids[1]!, ids[2]!]) {
    n.step({ type: "pre_vote_resp", from, to: ids[0]!, term: 2, reject: false });
  }
  for (const from of [ids[1]!, ids[2]!]) {
    n.step({ type: "vote_resp", from, to: ids[0]!, term: 2, reject: false });
  }
  if (n.status().role !== "leader") throw new Error(`not leader: ${JSON.stringify(n.status())}`);
  // The leader's no-op is one uncommitted entry; two more reach the bound.
  const results = [1, 2, 3].map(() => n.propose(enc.encode("y")));
  const last = results[2]!;
  if (!results[0]!.ok || !results[1]!.ok || last.ok || last.reason !== "overloaded") {
    throw new Error(`got ${JSON.stringify(results)}`);
  }
});

Deno.test("RaftNode.step() survives thousands of random and malformed messages", () => {
  let x = 99;
  const rnd = (n: number): number => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return Math.floor((x / 2147483648) * n);
  };
  const types = MESSAGE_TYPES;
  const conf = { voters: ids, learners: [] };
  const storages = ids.map(() => MemoryStorage.bootstrap(conf));
  const nodes = ids.map((id, i) => mkNode(id, storages[i]!));
  const num = (): number => [0, 1, 2, 3, 5, 8, -1, 2 ** 53, 1e9, 0.5][rnd(10)]!;
  let steps = 0;
  for (let i = 0; i < 6000; i++) {
    const k = rnd(3);
    const node = nodes[k]!;
    const to = ids[k]!;
    const from = ids[(k + 1 + rnd(2)) % 3]!;
    const term = node.status().term + rnd(3) - 1;
    const type = types[rnd(types.length)]!;
    const entries: Entry[] = [];
    const base = num();
    for (let j = 0; j < rnd(4); j++) {
      entries.push({
        index: rnd(3) === 0 ? num() : base + 1 + j,
        term: rnd(3) === 0 ? num() : term,
        type: rnd(5) === 0 ? "conf" : "normal",
        data: new Uint8Array(rnd(3)),
      });
    }
    const m = {
      type,
      from,
      to,
      term,
      logTerm: rnd(2) === 0 ? num() : term - 1,
      index: base,
      commit: num(),
      entries,
      reject: rnd(2) === 0,
      rejectHint: num(),
      transfer: rnd(4) === 0,
      ctx: `c${rnd(5)}`,
      target: ids[rnd(3)]!,
      snapshot: {
        meta: {
          index: num(),
          term: num(),
          conf: rnd(4) === 0 ? { voters: [], learners: [] } : conf,
        },
        data: new Uint8Array(),
      },
    } as unknown as Message;
    node.step(m);
    if (rnd(5) === 0) node.tick();
    if (rnd(7) === 0) node.propose(enc.encode("p"));
    if (rnd(11) === 0) node.readIndex(`r${i}`);
    if (node.hasReady()) {
      persist(storages[k]!, node.ready());
      node.advance();
    }
    steps++;
  }
  if (steps !== 6000) throw new Error("fuzz loop ended early");
});

/** A 3-voter leader (node 1) with both followers acknowledged up to its no-op. */
function leaderWithAckedFollowers(coalesceAppends: boolean): { n: RaftNode; s: MemoryStorage } {
  const conf = { voters: ids, learners: [] };
  const s = MemoryStorage.bootstrap(conf);
  const n = mkNode(ids[0]!, s, { coalesceAppends, maxInflightMsgs: 64 });
  n.campaign();
  for (const from of [ids[1]!, ids[2]!]) {
    n.step({ type: "pre_vote_resp", from, to: ids[0]!, term: 2, reject: false });
  }
  for (const from of [ids[1]!, ids[2]!]) {
    n.step({ type: "vote_resp", from, to: ids[0]!, term: 2, reject: false });
  }
  const rd = n.ready();
  persist(s, rd);
  n.advance();
  const last = s.lastIndex();
  for (const from of [ids[1]!, ids[2]!]) {
    n.step(
      {
        type: "app_resp",
        from,
        to: ids[0]!,
        term: 2,
        index: last,
        reject: false,
        rejectHint: 0,
        logTerm: 0,
      } as Message,
    );
  }
  persist(s, n.ready());
  n.advance();
  return { n, s };
}

Deno.test("RaftNode coalesceAppends: proposals between two Readies share one append per follower", () => {
  for (const coalesce of [true, false]) {
    const { n } = leaderWithAckedFollowers(coalesce);
    for (let i = 0; i < 5; i++) {
      if (!n.propose(enc.encode(`p${i}`)).ok) throw new Error("propose refused");
    }
    const apps = n.ready().messages.filter((m): m is Extract<Message, { type: "app" }> =>
      m.type === "app"
    );
    const perFollower = apps.filter((m) => m.to === ids[1]!);
    const want = coalesce ? 1 : 5;
    if (perFollower.length !== want) {
      throw new Error(`coalesce=${coalesce}: ${perFollower.length} appends to 2, want ${want}`);
    }
    const carried = perFollower.reduce((k, m) => k + m.entries.length, 0);
    if (carried !== 5) throw new Error(`coalesce=${coalesce}: ${carried} entries carried, want 5`);
    if (apps.length !== 2 * want) throw new Error(`coalesce=${coalesce}: ${apps.length} appends`);
  }
});

Deno.test("RaftNode coalesceAppends: a leader that stepped down before its Ready sends no appends", () => {
  const { n } = leaderWithAckedFollowers(true);
  if (!n.propose(enc.encode("x")).ok) throw new Error("propose refused");
  // A higher term from a peer deposes the leader before the owed broadcast goes out.
  n.step({ type: "heartbeat", from: ids[1]!, to: ids[0]!, term: 9, commit: 0, ctx: "" } as Message);
  if (n.status().role !== "follower") throw new Error(`role ${n.status().role}`);
  const apps = n.ready().messages.filter((m) => m.type === "app");
  if (apps.length !== 0) throw new Error(`a deposed leader sent ${apps.length} appends`);
});

Deno.test("RaftNode: a follower whose append was lost catches up from heartbeats, no new write needed", () => {
  for (const coalesce of [true, false]) {
    const { n, s } = leaderWithAckedFollowers(coalesce);
    if (!n.propose(enc.encode("x")).ok) throw new Error("propose refused");
    const rd = n.ready();
    persist(s, rd);
    n.advance();
    const last = s.lastIndex();
    // Follower 3 acks; the append to follower 2 is lost on the way.
    n.step({
      type: "app_resp",
      from: ids[2]!,
      to: ids[0]!,
      term: 2,
      index: last,
      reject: false,
      rejectHint: 0,
      logTerm: 0,
    } as Message);
    persist(s, n.ready());
    n.advance();
    // A heartbeat round: follower 2 answers, still behind. The leader must probe it again.
    n.tick();
    persist(s, n.ready());
    n.advance();
    n.step({ type: "heartbeat_resp", from: ids[1]!, to: ids[0]!, term: 2, ctx: "" } as Message);
    const probe = n.ready().messages.find((m) => m.type === "app" && m.to === ids[1]!) as
      | Extract<Message, { type: "app" }>
      | undefined;
    n.advance();
    if (probe === undefined) throw new Error(`coalesce=${coalesce}: no append after the heartbeat`);
    // Follower 2 lacks the probed entry and says so; the leader resends it.
    n.step({
      type: "app_resp",
      from: ids[1]!,
      to: ids[0]!,
      term: 2,
      index: probe.index,
      reject: true,
      rejectHint: last - 1,
      logTerm: 0,
    } as Message);
    const resend = n.ready().messages.find((m) => m.type === "app" && m.to === ids[1]!) as
      | Extract<Message, { type: "app" }>
      | undefined;
    n.advance();
    const carried = resend?.entries.map((e: Entry) => e.index) ?? [];
    if (!carried.includes(last)) {
      throw new Error(
        `coalesce=${coalesce}: resend carried ${JSON.stringify(carried)}, want ${last}`,
      );
    }
  }
});
