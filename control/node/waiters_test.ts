import assert from "node:assert/strict";
import { NoQuorumError, NotLeaderError } from "../api/backend.ts";
import type { ApplyResult } from "../registry/mod.ts";
import type { Entry } from "../raft/types.ts";
import { Waiters } from "./waiters.ts";

const ok = (index: number): ApplyResult => ({
  ok: true,
  index,
  value: { type: "delete_resource", revision: 1 },
});
const conf = (index: number, term: number): Entry => ({
  index,
  term,
  type: "conf",
  data: new Uint8Array(),
});

Deno.test("Waiters.proposal() answers the caller whose entry applied, once", async () => {
  const w = new Waiters();
  const p = w.proposal({ index: 4, term: 2 }, null, new AbortController().signal);
  assert.equal(w.proposals, 1);
  const pending = w.takeProposal(4)!;
  assert.equal(pending.term, 2);
  assert.equal(w.takeProposal(4), undefined);
  pending.resolve(ok(4));
  assert.deepEqual(await p, ok(4));
  assert.equal(w.proposals, 0);
});

Deno.test("Waiters.proposal() gives up with 503 no_quorum when its signal aborts", async () => {
  const w = new Waiters();
  const c = new AbortController();
  const p = w.proposal({ index: 1, term: 1 }, null, c.signal);
  c.abort();
  await assert.rejects(p, NoQuorumError);
  assert.equal(w.proposals, 0);
});

Deno.test("Waiters.confApplied() rejects a change overwritten in another term", async () => {
  const w = new Waiters();
  const same = w.conf({ index: 3, term: 1 }, new AbortController().signal, "late");
  const other = w.conf({ index: 5, term: 1 }, new AbortController().signal, "late");
  w.confApplied(conf(3, 1));
  w.confApplied(conf(5, 2));
  await same;
  await assert.rejects(other, NotLeaderError);
});

Deno.test("Waiters releases a read only once its read index is applied", async () => {
  const w = new Waiters();
  let done = false;
  const r = w.read("a", new AbortController().signal).then(() => done = true);
  const failed = w.read("b", new AbortController().signal);
  w.readResults([{ ctx: "a", index: 7 }], [{ ctx: "b", reason: "stepped_down" }]);
  await assert.rejects(failed, NotLeaderError);
  w.releaseReads(6);
  await Promise.resolve();
  assert.equal(done, false);
  w.releaseReads(7);
  await r;
  assert.equal(done, true);
});

Deno.test("Waiters.failAll() rejects every kind of waiter with the given error", async () => {
  const w = new Waiters();
  const s = new AbortController().signal;
  const all = [
    w.proposal({ index: 1, term: 1 }, null, s),
    w.conf({ index: 2, term: 1 }, s, "x"),
    w.read("r", s),
  ];
  const e = new Error("closing");
  w.failAll(e);
  for (const p of all) await assert.rejects(p, (x) => x === e);
  assert.equal(w.proposals, 0);
});
