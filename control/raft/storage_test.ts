import { nodeId } from "../../common/ids.ts";
import { ErrCompacted, ErrSnapOutOfDate, ErrUnavailable, MemoryStorage } from "./storage.ts";
import type { Entry } from "./types.ts";

const conf = { voters: [nodeId("1"), nodeId("2")], learners: [] };
const e = (index: number, term: number): Entry => ({
  index,
  term,
  type: "normal",
  data: new TextEncoder().encode(`${term}/${index}`),
});

function throwsA(f: () => unknown, cls: new (...a: never[]) => Error, what: string): void {
  try {
    f();
  } catch (err) {
    if (err instanceof cls) return;
    throw new Error(`${what}: expected ${cls.name}, got ${err}`);
  }
  throw new Error(`${what}: expected ${cls.name}, nothing thrown`);
}

function eq(got: unknown, want: unknown, what: string): void {
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    throw new Error(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  }
}

Deno.test("MemoryStorage.bootstrap() holds the membership in a snapshot at index 1", () => {
  const s = MemoryStorage.bootstrap(conf);
  eq([s.firstIndex(), s.lastIndex(), s.term(1)], [2, 1, 1], "indexes");
  eq(s.initialState(), { hardState: { term: 1, vote: null, commit: 1 }, conf }, "initial state");
});

Deno.test("MemoryStorage.append() appends, overwrites a conflicting suffix and rejects gaps", () => {
  const s = MemoryStorage.bootstrap(conf);
  s.append([e(2, 1), e(3, 1), e(4, 1)]);
  s.append([e(3, 2)]);
  eq(s.entries(2, 4).map((x) => [x.index, x.term]), [[2, 1], [3, 2]], "after overwrite");
  eq(s.lastIndex(), 3, "last index after truncation");
  throwsA(() => s.append([e(9, 2)]), Error, "gap");
  // Entries already compacted are skipped rather than resurrected.
  s.compact(3, new Uint8Array(), conf);
  s.append([e(2, 1), e(3, 2), e(4, 2)]);
  eq([s.firstIndex(), s.lastIndex(), s.term(4)], [4, 4, 2], "after append over snapshot");
});

Deno.test("MemoryStorage.entries() and term() report ErrCompacted and ErrUnavailable", () => {
  const s = MemoryStorage.bootstrap(conf);
  s.append([e(2, 1), e(3, 1), e(4, 2), e(5, 2)]);
  s.compact(3, new Uint8Array([7]), conf);
  eq(s.snapshot().meta, { index: 3, term: 1, conf }, "snapshot meta");
  eq(s.term(3), 1, "term at snapshot index");
  throwsA(() => s.term(2), ErrCompacted, "term compacted");
  throwsA(() => s.term(6), ErrUnavailable, "term unavailable");
  throwsA(() => s.entries(3, 5), ErrCompacted, "entries compacted");
  throwsA(() => s.entries(4, 7), ErrUnavailable, "entries unavailable");
  eq(s.entries(4, 6, 1).map((x) => x.index), [4], "maxCount");
});

Deno.test("MemoryStorage.compact() stays correct across many compactions (amortised reclaim)", () => {
  const s = MemoryStorage.bootstrap(conf);
  let idx = 1;
  for (let round = 0; round < 50; round++) {
    const batch: Entry[] = [];
    for (let i = 0; i < 100; i++) batch.push(e(++idx, 1 + Math.floor(idx / 1000)));
    s.append(batch);
    s.compact(idx - 10, new Uint8Array(), conf);
    eq([s.firstIndex(), s.lastIndex()], [idx - 9, idx], `round ${round}`);
    eq(s.term(idx - 5), 1 + Math.floor((idx - 5) / 1000), `term in round ${round}`);
  }
});

Deno.test("MemoryStorage.applySnapshot() replaces the log and refuses older snapshots", () => {
  const s = MemoryStorage.bootstrap(conf);
  s.append([e(2, 1), e(3, 1)]);
  s.applySnapshot({ meta: { index: 10, term: 4, conf }, data: new Uint8Array() });
  eq(
    [s.firstIndex(), s.lastIndex(), s.hardState().commit, s.hardState().term],
    [11, 10, 10, 4],
    "after",
  );
  throwsA(
    () => s.applySnapshot({ meta: { index: 5, term: 2, conf }, data: new Uint8Array() }),
    ErrSnapOutOfDate,
    "older snapshot",
  );
});
