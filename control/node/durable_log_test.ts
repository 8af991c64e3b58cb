import { assertEquals } from "../../tests/assert.ts";
import { nullLogger } from "../../common/log.ts";
import { nodeId } from "../../common/mod.ts";
import type { Entry, HardState } from "../raft/types.ts";
import { DurableLog } from "./durable_log.ts";

const _a = nodeId("a");

function entry(index: number, term: number): Entry {
  return { index, term, type: "normal", data: new TextEncoder().encode(`e${index}`) };
}

Deno.test("DurableLog fsyncs entries and term/vote changes, not commit-only hard states", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein_durable_" });
  try {
    const { durable } = await DurableLog.open(dir, nullLogger);
    const fsyncs = () => durable.walStats().fsyncs;
    await durable.persist({ term: 1, vote: _a, commit: 0 }, [entry(1, 1), entry(2, 1)]);
    assertEquals(fsyncs(), 1, "entries with a first hard state");
    await durable.persist({ term: 1, vote: _a, commit: 1 }, []);
    await durable.persist({ term: 1, vote: _a, commit: 2 }, []);
    assertEquals(fsyncs(), 1, "commit-only changes are written without fsync");
    await durable.persist({ term: 2, vote: null, commit: 2 }, []);
    assertEquals(fsyncs(), 2, "a new term is synced");
    await durable.persist({ term: 2, vote: _a, commit: 2 }, []);
    assertEquals(fsyncs(), 3, "a new vote is synced");
    await durable.persist({ term: 2, vote: _a, commit: 2 }, [entry(3, 2)]);
    assertEquals(fsyncs(), 4, "entries are synced even with an unchanged hard state");
    const last: HardState = { term: 2, vote: _a, commit: 3 };
    await durable.persist(last, []);
    assertEquals(fsyncs(), 4, "commit-only again");
    await durable.close();
    const reopened = await DurableLog.open(dir, nullLogger);
    assertEquals(reopened.storage.hardState(), last, "the newest hard state is restored");
    assertEquals(reopened.storage.lastIndex(), 3, "every entry is restored");
    await reopened.durable.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("DurableLog.saveSnapshot syncs the hard state it rewrites", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein_durable_" });
  try {
    const { durable } = await DurableLog.open(dir, nullLogger);
    await durable.persist({ term: 1, vote: _a, commit: 1 }, [entry(1, 1)]);
    const before = durable.walStats().fsyncs;
    await durable.saveSnapshot({
      meta: { index: 1, term: 1, conf: { voters: [_a], learners: [] } },
      data: new Uint8Array([1, 2, 3]),
    });
    // The old segments it may release could hold the only durable term and vote.
    assertEquals(durable.walStats().fsyncs, before + 1, "one fsync for the rewritten hard state");
    await durable.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
