import { checkLinearizable, checkRegister, type Op } from "./linearizability.ts";

let _id = 0;
function w(key: string, value: string, invoke: number, response: number, client = 0): Op {
  return { id: _id++, client, key, kind: "write", value, invoke, response };
}
function r(key: string, value: string | null, invoke: number, response: number, client = 1): Op {
  return { id: _id++, client, key, kind: "read", value, invoke, response };
}

function assertOk(ops: Op[], want: boolean): void {
  const got = checkLinearizable(ops).ok;
  if (got !== want) {
    throw new Error(`expected ok=${want}, got ok=${got} for ${JSON.stringify(ops)}`);
  }
}

Deno.test("checkLinearizable() accepts a sequential history", () => {
  assertOk([w("a", "1", 0, 1), r("a", "1", 2, 3), w("a", "2", 4, 5), r("a", "2", 6, 7)], true);
});

Deno.test("checkLinearizable() rejects a stale read after a completed write", () => {
  assertOk([w("a", "1", 0, 1), w("a", "2", 2, 3), r("a", "1", 4, 5)], false);
});

Deno.test("checkLinearizable() rejects reading a value never written", () => {
  assertOk([w("a", "1", 0, 10), r("a", "9", 2, 3)], false);
});

Deno.test("checkLinearizable() accepts either order for concurrent writes", () => {
  assertOk([w("a", "1", 0, 10), w("a", "2", 1, 9), r("a", "1", 11, 12)], true);
  assertOk([w("a", "1", 0, 10), w("a", "2", 1, 9), r("a", "2", 11, 12)], true);
});

Deno.test("checkLinearizable() rejects reads that observe two orders of the same writes", () => {
  assertOk([
    w("a", "1", 0, 10),
    w("a", "2", 0, 10),
    r("a", "1", 11, 12),
    r("a", "2", 13, 14),
    r("a", "1", 15, 16),
  ], false);
});

Deno.test("checkLinearizable() treats unknown-outcome writes as possibly applied or not", () => {
  assertOk([w("a", "1", 0, 1), w("a", "2", 2, Infinity), r("a", "2", 5, 6)], true);
  assertOk([w("a", "1", 0, 1), w("a", "2", 2, Infinity), r("a", "1", 5, 6)], true);
  // Once seen, an unknown write cannot un-happen.
  assertOk([
    w("a", "1", 0, 1),
    w("a", "2", 2, Infinity),
    r("a", "2", 5, 6),
    r("a", "1", 7, 8),
  ], false);
});

Deno.test("checkLinearizable() reports the failing key only", () => {
  const res = checkLinearizable([
    w("a", "1", 0, 1),
    r("a", "1", 2, 3),
    w("b", "1", 0, 1),
    r("b", null, 2, 3),
  ]);
  if (res.ok || res.key !== "b") {
    throw new Error(`expected failure on key b, got ${JSON.stringify(res)}`);
  }
});

Deno.test("checkRegister() handles a larger concurrent history in bounded time", () => {
  const ops: Op[] = [];
  for (let i = 0; i < 60; i++) ops.push(w("k", `v${i}`, i, i + 5, i % 4));
  ops.push(r("k", "v59", 70, 71));
  if (!checkRegister(ops).ok) throw new Error("expected linearizable");
  ops.push(r("k", "v3", 72, 73));
  if (checkRegister(ops).ok) throw new Error("expected non-linearizable");
});
