import assert from "node:assert/strict";
import { nullLogger } from "../../common/mod.ts";
import { type ApplyResult, RegistryState, type ValidatedCommand } from "../registry/mod.ts";
import { decodeSnapshotPayload } from "./envelope.ts";
import {
  BOOTSTRAP_TOKEN_FOLLOWER_DELAY_MS,
  type BootstrapDeps,
  Bootstrapper,
  foundingStorage,
} from "./bootstrap.ts";
import type { Clock } from "./ports.ts";

const HASH = "ab".repeat(32);

Deno.test("foundingStorage() gives every founder the same first snapshot, whatever the order", () => {
  const peers = [
    { id: "n2", hostname: "h2", port: 2 },
    { id: "n1", hostname: "h1", port: 1 },
  ];
  const a = foundingStorage({ node: "n1", raftAdvertise: "h1:1", peers });
  const b = foundingStorage({ node: "n2", raftAdvertise: "h2:2", peers: [...peers].reverse() });
  assert.deepEqual(a.storage.snapshot(), b.storage.snapshot());
  assert.deepEqual(a.conf.voters, ["n1", "n2"]);
  const { members } = decodeSnapshotPayload(a.storage.snapshot().data);
  assert.deepEqual(members.map((m) => m.raft), ["h1:1", "h2:2"]);
});

Deno.test("foundingStorage() founds a lone node from its own address", () => {
  const { conf } = foundingStorage({ node: "solo", raftAdvertise: "[::1]:7", peers: [] });
  assert.deepEqual(conf.voters, ["solo"]);
});

/** A bootstrapper whose node, clock and proposals the test controls. */
function harness(role: "leader" | "follower") {
  let now = 1_000_000;
  const proposed: ValidatedCommand[] = [];
  const state = new RegistryState();
  const clock: Clock = {
    now: () => now,
    every: () => () => {},
    sleep: () => Promise.resolve(),
    timeout: () => new AbortController().signal,
  };
  const propose = (cmd: ValidatedCommand): Promise<ApplyResult> => {
    proposed.push(cmd);
    return Promise.resolve(state.applyValidated(state.appliedIndex + 1, cmd));
  };
  const deps: BootstrapDeps = {
    node: "n1",
    trustDomain: null,
    tokenHash: HASH,
    state: () => state,
    role: () => role,
    raftStatus: () => ({ role, leader: role === "leader" ? "n1" : "n2" }),
    hasMember: () => true,
    proposeHere: propose,
    propose,
    closed: () => false,
    clock,
    log: nullLogger,
  };
  return { b: new Bootstrapper(deps), proposed, state, advance: (ms: number) => now += ms };
}

Deno.test("Bootstrapper: a leader registers its bootstrap token once", async () => {
  const h = harness("leader");
  h.b.tick();
  await Promise.resolve();
  await Promise.resolve();
  assert.equal(h.proposed.length, 1);
  assert.equal(h.proposed[0]!.type, "put_operator_token");
  assert.equal(h.state.operatorTokenStatus(HASH), "active");
  h.advance(60_000);
  h.b.tick();
  assert.equal(h.proposed.length, 1, "a registered token is not proposed again");
});

Deno.test("Bootstrapper: a follower waits for the leader to register a shared token first", async () => {
  const h = harness("follower");
  h.b.tick();
  h.advance(BOOTSTRAP_TOKEN_FOLLOWER_DELAY_MS - 1);
  h.b.tick();
  assert.equal(h.proposed.length, 0);
  h.advance(1);
  h.b.tick();
  await Promise.resolve();
  assert.equal(h.proposed.length, 1);
});

Deno.test("Bootstrapper: no CA is proposed when the trust domain is null", () => {
  const h = harness("leader");
  h.b.tick();
  assert.ok(h.proposed.every((c) => c.type !== "put_ca"));
});
