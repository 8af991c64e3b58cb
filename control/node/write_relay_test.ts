import assert from "node:assert/strict";
import { BackendError } from "../api/backend.ts";
import type { ApplyResult } from "../registry/mod.ts";
import { createOperatorToken } from "../auth/mod.ts";
import {
  decodeForwardRequest,
  decodeForwardResult,
  encodeForwardRequest,
  encodeForwardResult,
  forwardRefusal,
  ForwardTable,
  FRAME_FORWARD,
  FRAME_FORWARD_RESULT,
} from "./write_relay.ts";

const result = (index: number): ApplyResult => ({
  ok: true,
  index,
  value: { type: "delete_resource", revision: 3 },
});

function table(opts: { max?: number; timeoutMs?: number } = {}) {
  const clock = { now: 1000 };
  const sent: number[] = [];
  const t = new ForwardTable({
    maxInFlight: opts.max ?? 8,
    timeoutMs: opts.timeoutMs ?? 500,
    now: () => clock.now,
  });
  const start = (target = "cp-1", signal = new AbortController().signal) =>
    t.start(target, signal, (id) => {
      sent.push(id);
      return true;
    }, () => new Error("not sent"));
  return { t, clock, sent, start };
}

async function rejection(p: Promise<unknown>): Promise<BackendError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof BackendError, `expected a BackendError, got ${e}`);
    return e;
  }
  throw new Error("expected a rejection");
}

Deno.test("forward frames round-trip id, command bytes and outcome", () => {
  const cmd = new TextEncoder().encode('{"type":"x"}');
  const req = encodeForwardRequest(0xfffffffe, cmd);
  assert.equal(req[0], FRAME_FORWARD);
  const d = decodeForwardRequest(req);
  assert.equal(d.id, 0xfffffffe);
  assert.deepEqual([...d.command], [...cmd]);

  const ok = encodeForwardResult(7, { ok: true, result: result(42) });
  assert.equal(ok[0], FRAME_FORWARD_RESULT);
  assert.deepEqual(decodeForwardResult(ok), { id: 7, outcome: { ok: true, result: result(42) } });
  const fail = { ok: false as const, status: 409 as const, code: "invalid_revision", message: "m" };
  assert.deepEqual(decodeForwardResult(encodeForwardResult(8, fail)), { id: 8, outcome: fail });
});

Deno.test("decodeForwardResult() refuses malformed outcomes", () => {
  const bad = [
    new Uint8Array([FRAME_FORWARD_RESULT, 0, 0]),
    encodeForwardResult(1, { ok: false, status: 500 as 503, code: "x", message: "y" }),
    encodeForwardResult(1, { ok: true, result: { ok: true } as unknown as ApplyResult }),
    new Uint8Array([FRAME_FORWARD_RESULT, 0, 0, 0, 1, 0x7b]),
  ];
  for (const f of bad) assert.throws(() => decodeForwardResult(f));
});

Deno.test("ForwardTable resolves a forward with the leader's result, only from that leader", async () => {
  const { t, sent, start } = table();
  const p = start("cp-1");
  assert.equal(sent.length, 1);
  assert.equal(t.settle("cp-2", sent[0]!, { ok: true, result: result(1) }), false);
  assert.equal(t.settle("cp-1", sent[0]! + 1, { ok: true, result: result(1) }), false);
  assert.equal(t.size, 1);
  assert.equal(t.settle("cp-1", sent[0]!, { ok: true, result: result(5) }), true);
  assert.deepEqual(await p, result(5));
  assert.equal(t.settle("cp-1", sent[0]!, { ok: true, result: result(5) }), false);
  assert.deepEqual(t.stats(), { inFlight: 0, sent: 1, answered: 1, lost: 0 });
});

Deno.test("ForwardTable turns a refusal from the leader into its status and code", async () => {
  const { t, sent, start } = table();
  const p = start();
  t.settle("cp-1", sent[0]!, { ok: false, status: 404, code: "not_found", message: "gone" });
  const e = await rejection(p);
  assert.equal(e.status, 404);
  assert.equal(e.code, "not_found");
});

Deno.test("ForwardTable fails a forward without an answer with 503 once its deadline passed", async () => {
  const { t, clock, start } = table({ timeoutMs: 500 });
  const p = start();
  clock.now += 499;
  t.expire();
  assert.equal(t.size, 1);
  clock.now += 1;
  t.expire();
  assert.equal(t.size, 0);
  const e = await rejection(p);
  assert.equal(e.status, 503);
  assert.equal(e.code, "leader_unreachable");
  assert.deepEqual(t.stats(), { inFlight: 0, sent: 1, answered: 0, lost: 1 });
});

Deno.test("ForwardTable fails forwards to an old leader when the leader changes, keeps the rest", async () => {
  const { t, sent, start } = table();
  const old = start("cp-1");
  const cur = start("cp-2");
  t.failExcept("cp-2", "leader changed");
  assert.equal((await rejection(old)).code, "leader_unreachable");
  assert.equal(t.size, 1);
  t.settle("cp-2", sent[1]!, { ok: true, result: result(9) });
  assert.deepEqual(await cur, result(9));
});

Deno.test("ForwardTable answers 503 when the caller aborts, and refuses beyond its bound", async () => {
  const { t, start } = table({ max: 2 });
  const ac = new AbortController();
  const a = start("cp-1", ac.signal);
  const b = start("cp-1");
  assert.equal((await rejection(start("cp-1"))).code, "overloaded");
  ac.abort();
  assert.equal((await rejection(a)).status, 503);
  assert.equal(t.size, 1);
  t.failAll(new BackendError(503, "shutting_down", "bye"));
  assert.equal((await rejection(b)).code, "shutting_down");
  assert.equal(t.size, 0);
});

Deno.test("ForwardTable rejects with the caller's error when the frame cannot be queued", async () => {
  const t = new ForwardTable();
  const p = t.start(
    "cp-1",
    new AbortController().signal,
    () => false,
    () => new BackendError(503, "not_leader", "link full"),
  );
  assert.equal((await rejection(p)).message, "link full");
  assert.equal(t.size, 0);
});

Deno.test("a forward request carries the original caller; one without stays decodable", () => {
  const cmd = new TextEncoder().encode('{"type":"delete_resource","kind":"Policy","name":"x"}');
  const plain = decodeForwardRequest(encodeForwardRequest(7, cmd));
  assert.equal(plain.id, 7);
  assert.equal(plain.caller, null);
  assert.deepEqual(plain.command, cmd);
  const caller = { peer: "spiffe://skein.local/svc/ledger", tokenId: null };
  const withCaller = decodeForwardRequest(encodeForwardRequest(8, cmd, caller));
  assert.equal(withCaller.id, 8);
  assert.deepEqual(withCaller.caller, caller);
  assert.deepEqual(withCaller.command, cmd);
  const frame = encodeForwardRequest(9, cmd, { peer: null, tokenId: "abc" });
  assert.deepEqual(decodeForwardRequest(frame).caller, { peer: null, tokenId: "abc" });
  // A caller section whose length overruns the frame is refused, not misread as a command.
  const bad = frame.slice(0, 12);
  assert.throws(() => decodeForwardRequest(bad), /overruns/);
});

Deno.test("forwardRefusal() authorizes a forwarded write as its original caller", () => {
  const now = 1_000;
  const op = createOperatorToken({ name: "op", role: "operator", now }).record;
  const ro = createOperatorToken({ name: "ro", role: "read", now }).record;
  const tokens = [op, ro];
  const reg = { type: "register_instance", instance: { service: "ledger" } };
  const ledger = "spiffe://skein.local/svc/ledger";
  const cases: [
    string,
    object,
    { peer: string | null; tokenId: string | null } | null,
    number | null,
  ][] = [
    ["own service", reg, { peer: ledger, tokenId: null }, null],
    ["other service", reg, { peer: "spiffe://skein.local/svc/billing", tokenId: null }, 403],
    ["anonymous", reg, { peer: null, tokenId: null }, 401],
    ["control node is no operator", reg, {
      peer: "spiffe://skein.local/control/cp-2",
      tokenId: null,
    }, 403],
    ["operator token", { type: "put_resource" }, { peer: null, tokenId: op.id }, null],
    ["read token writes", { type: "put_resource" }, { peer: null, tokenId: ro.id }, 403],
    ["unknown (revoked) token", { type: "put_resource" }, { peer: null, tokenId: "gone" }, 401],
    ["proxy writes resources", { type: "put_resource" }, { peer: ledger, tokenId: null }, 403],
    ["admin command by operator", { type: "put_ca" }, { peer: null, tokenId: op.id }, 403],
    ["node's own proposal", { type: "put_operator_token" }, null, null],
  ];
  for (const [name, cmd, caller, want] of cases) {
    const r = forwardRefusal(cmd as { type: string }, caller, { tokens, now });
    assert.equal(r === null ? null : (r.ok ? "ok" : r.status), want, name);
  }
  // The refusal survives the result frame, status included.
  const r = forwardRefusal(reg, { peer: null, tokenId: null }, { tokens, now })!;
  const back = decodeForwardResult(encodeForwardResult(3, r));
  assert.deepEqual(back.outcome, r);
});
