/**
 * A linearizability checker for key/value register histories: Wing & Gong's search with
 * Lowe's memoization (as in Porcupine), run per key (registers compose, P-compositionality).
 * @module
 */

/** One client operation. `response` is Infinity when a write's outcome is unknown. */
export type Op = {
  id: number;
  client: number;
  key: string;
  kind: "write" | "read";
  /** The value written, or the value the read returned (null: key absent). */
  value: string | null;
  invoke: number;
  response: number;
};

/** Search steps per key before the checker gives up rather than run unbounded. */
export const CHECK_STEPS_MAX = 2_000_000;

/** Result of a check. */
export type CheckResult =
  | { ok: true }
  | { ok: false; key: string; ops: Op[]; reason: string };

type _Entry = {
  op: Op;
  idx: number;
  call: boolean;
  time: number;
  match: _Entry | null;
  prev: _Entry | null;
  next: _Entry | null;
};

function _lift(e: _Entry): void {
  e.prev!.next = e.next;
  e.next!.prev = e.prev;
  const m = e.match!;
  m.prev!.next = m.next;
  if (m.next) m.next.prev = m.prev;
}

function _unlift(e: _Entry): void {
  const m = e.match!;
  m.prev!.next = m;
  if (m.next) m.next.prev = m;
  e.prev!.next = e;
  e.next!.prev = e;
}

/** Checks one key's history against a register that starts absent (null). */
export function checkRegister(ops: Op[]): { ok: boolean; reason: string } {
  const evs: _Entry[] = [];
  ops.forEach((op, idx) => {
    const call: _Entry = {
      op,
      idx,
      call: true,
      time: op.invoke,
      match: null,
      prev: null,
      next: null,
    };
    const ret: _Entry = {
      op,
      idx,
      call: false,
      time: op.response,
      match: null,
      prev: null,
      next: null,
    };
    call.match = ret;
    evs.push(call, ret);
  });
  // Calls sort before returns at equal times: operations touching the same tick overlap.
  evs.sort((a, b) => a.time - b.time || (a.call === b.call ? a.idx - b.idx : a.call ? -1 : 1));
  const head: _Entry = {
    op: ops[0]!,
    idx: -1,
    call: false,
    time: -Infinity,
    match: null,
    prev: null,
    next: null,
  };
  let prev = head;
  for (const e of evs) {
    prev.next = e;
    e.prev = prev;
    prev = e;
  }
  let state: string | null = null;
  let lin = 0n;
  const cache = new Set<string>();
  const stack: { e: _Entry; state: string | null }[] = [];
  let cur = head.next;
  let steps = 0;
  while (head.next !== null) {
    if (++steps > CHECK_STEPS_MAX) {
      return { ok: false, reason: `search exceeded ${CHECK_STEPS_MAX} steps (inconclusive)` };
    }
    const e = cur!;
    if (e.call) {
      const op = e.op;
      const okStep = op.kind === "write" || op.value === state;
      const next: string | null = op.kind === "write" ? op.value : state;
      if (okStep) {
        const nlin = lin | (1n << BigInt(e.idx));
        const key = `${nlin.toString(36)}|${next}`;
        if (!cache.has(key)) {
          cache.add(key);
          stack.push({ e, state });
          state = next;
          lin = nlin;
          _lift(e);
          cur = head.next;
          continue;
        }
      }
      cur = e.next;
    } else {
      // A return with its call still unlinearized: undo the most recent choice.
      const top = stack.pop();
      if (!top) return { ok: false, reason: "no linearization order exists" };
      state = top.state;
      lin &= ~(1n << BigInt(top.e.idx));
      _unlift(top.e);
      cur = top.e.next;
    }
  }
  return { ok: true, reason: "" };
}

/** Checks a whole history, key by key. */
export function checkLinearizable(history: Op[]): CheckResult {
  const byKey = new Map<string, Op[]>();
  for (const op of history) byKey.set(op.key, [...(byKey.get(op.key) ?? []), op]);
  for (const key of [...byKey.keys()].sort()) {
    const ops = byKey.get(key)!;
    const r = checkRegister(ops);
    if (!r.ok) return { ok: false, key, ops, reason: r.reason };
  }
  return { ok: true };
}
