import { assert, assertEquals, assertRejects } from "../../tests/assert.ts";
import { memoryLogger, nullLogger } from "../../common/log.ts";
import { FaultyFs, FsFaultError } from "./fs.ts";
import {
  SNAPSHOT_KEEP_DEFAULT,
  SnapshotCorruptError,
  snapshotName,
  SnapshotStore,
} from "./snapshot_store.ts";

function assertBytes(got: Uint8Array, want: Uint8Array, msg: string): void {
  assertEquals(got.length, want.length, `${msg}: length`);
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) throw new Error(`${msg}: byte ${i} differs`);
  }
}

function payload(seed: number, size = 1000): Uint8Array {
  return new Uint8Array(size).map((_, i) => (seed * 13 + i * 7) & 0xff);
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "skein_snap_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

Deno.test("SnapshotStore.load() returns null for a missing directory and an empty one", async () => {
  await withDir(async (dir) => {
    const sub = `${dir}/does/not/exist`;
    const store = await SnapshotStore.open(sub, {}, nullLogger);
    assertEquals(await store.load(), null, "freshly created directory");
    await Deno.remove(`${dir}/does`, { recursive: true });
    assertEquals(await store.load(), null, "directory removed after open");
    assertEquals((await store.list()).length, 0, "list of a missing directory");
  });
});

Deno.test("SnapshotStore saves and loads the newest snapshot with its metadata", async () => {
  await withDir(async (dir) => {
    const store = await SnapshotStore.open(dir, {}, nullLogger);
    await store.save({ index: 10, term: 1, metadata: { voters: ["a"] }, payload: payload(1) });
    await store.save({ index: 25, term: 2, metadata: { voters: ["a", "b"] }, payload: payload(2) });
    const reopened = await SnapshotStore.open(dir, {}, nullLogger);
    const s = await reopened.load();
    assert(s !== null, "a snapshot loads");
    assertEquals(s.index, 25, "index");
    assertEquals(s.term, 2, "term");
    assertEquals(JSON.stringify(s.metadata), '{"voters":["a","b"]}', "metadata");
    assertBytes(s.payload, payload(2), "payload");
    assert(s.file.endsWith(snapshotName(25, 2)), "file name");
    // An empty payload and no metadata are fine too.
    await store.save({ index: 30, term: 2, payload: new Uint8Array(0) });
    const e = await store.load();
    assertEquals(e?.payload.length, 0, "empty payload");
    assertEquals(e?.metadata, null, "metadata defaults to null");
  });
});

Deno.test("SnapshotStore keeps only the newest N snapshots", async () => {
  await withDir(async (dir) => {
    const store = await SnapshotStore.open(dir, {}, nullLogger);
    for (let i = 1; i <= SNAPSHOT_KEEP_DEFAULT + 3; i++) {
      await store.save({ index: i * 100, term: 1, payload: payload(i, 10) });
    }
    const kept = await store.list();
    assertEquals(kept.length, SNAPSHOT_KEEP_DEFAULT, "count kept");
    assertEquals(kept[0]!.index, (SNAPSHOT_KEEP_DEFAULT + 3) * 100, "newest kept");
    assertEquals((await names(dir)).length, SNAPSHOT_KEEP_DEFAULT, "files on disk");
  });
});

Deno.test("SnapshotStore refuses a snapshot older than the newest one", async () => {
  await withDir(async (dir) => {
    const store = await SnapshotStore.open(dir, {}, nullLogger);
    await store.save({ index: 50, term: 3, payload: payload(1) });
    await assertRejects(store.save({ index: 40, term: 3, payload: payload(2) }), RangeError, "idx");
    await assertRejects(
      store.save({ index: 50, term: 2, payload: payload(2) }),
      RangeError,
      "term",
    );
    assertEquals((await store.load())?.index, 50, "newest unchanged");
  });
});

Deno.test("SnapshotStore.load() reports a corrupt newest snapshot even when an older one is valid", async () => {
  await withDir(async (dir) => {
    const store = await SnapshotStore.open(dir, {}, nullLogger);
    await store.save({ index: 10, term: 1, payload: payload(1) });
    const info = await store.save({ index: 20, term: 1, metadata: { a: 1 }, payload: payload(2) });
    const good = await Deno.readFile(info.file);
    const cases: [string, (b: Uint8Array) => Uint8Array, string][] = [
      ["payload bit flip", (b) => (b[b.length - 10]! ^= 4, b), "payload checksum"],
      ["header bit flip", (b) => (b[20]! ^= 4, b), "header checksum"],
      ["truncated payload", (b) => b.subarray(0, b.length - 1), "payload is"],
      ["truncated header", (b) => b.subarray(0, 12), "shorter than a header"],
      ["bad magic", (b) => (b[0] = 0x41, b), "magic"],
      ["empty file", () => new Uint8Array(0), "shorter than a header"],
    ];
    for (const [label, mutate, reason] of cases) {
      await Deno.writeFile(info.file, mutate(good.slice()));
      const err = await assertRejects(store.load(), SnapshotCorruptError, label);
      assertEquals(err.file, info.file, `${label}: names the file`);
      assert(err.message.includes(reason), `${label}: reason in "${err.message}"`);
    }
    // The older snapshot was not deleted or touched by the failed loads.
    assertEquals((await store.list()).length, 2, "both files still there");
  });
});

Deno.test("SnapshotStore: a file renamed to another index is reported as corrupt", async () => {
  await withDir(async (dir) => {
    const store = await SnapshotStore.open(dir, {}, nullLogger);
    const info = await store.save({ index: 10, term: 1, payload: payload(1) });
    await Deno.rename(info.file, `${dir}/${snapshotName(99, 1)}`);
    await assertRejects(store.load(), SnapshotCorruptError, "renamed file");
  });
});

Deno.test("SnapshotStore: a crash during save leaves the old snapshot and a temp file that open() removes", async () => {
  await withDir(async (dir) => {
    const store = await SnapshotStore.open(dir, {}, nullLogger);
    await store.save({ index: 10, term: 1, payload: payload(1) });

    // The process "dies" before the rename: the rename fails and so does the cleanup.
    const fs = new FaultyFs();
    const crashing = await SnapshotStore.open(dir, { fs }, nullLogger);
    fs.failNext("rename");
    fs.addFault({ op: "remove", at: 2, pathIncludes: ".tmp" }); // the first remove is the pre-clean
    const err = await assertRejects(
      crashing.save({ index: 20, term: 1, payload: payload(2) }),
      FsFaultError,
      "save during crash",
    );
    assertEquals(err.op, "rename", "the rename failed");
    assert((await names(dir)).some((n) => n.endsWith(".tmp")), "temp file left behind");

    const log = memoryLogger();
    const after = await SnapshotStore.open(dir, {}, log);
    assert(!(await names(dir)).some((n) => n.endsWith(".tmp")), "temp file removed at open");
    assert(log.lines.some((l) => l.includes("unfinished snapshot")), "removal is logged");
    const s = await after.load();
    assertEquals(s?.index, 10, "old snapshot still loads");
    assertBytes(s!.payload, payload(1), "old payload intact");
  });
});

Deno.test("SnapshotStore: disk full while writing a snapshot keeps the old one and cleans up", async () => {
  await withDir(async (dir) => {
    const fs = new FaultyFs();
    const store = await SnapshotStore.open(dir, { fs }, nullLogger);
    await store.save({ index: 10, term: 1, payload: payload(1) });
    fs.failNext("write", { partialBytes: 100 });
    const err = await assertRejects(
      store.save({ index: 20, term: 1, payload: payload(2) }),
      FsFaultError,
      "disk full",
    );
    assertEquals(err.code, "ENOSPC", "ENOSPC");
    assertEquals(
      (await names(dir)).join(","),
      snapshotName(10, 1),
      "only the old snapshot remains",
    );
    assertEquals((await store.load())?.index, 10, "old snapshot loads");
    // Once space is back, saving works.
    await store.save({ index: 20, term: 1, payload: payload(2) });
    assertEquals((await store.load())?.index, 20, "new snapshot loads");
  });
});

Deno.test("SnapshotStore: a partially written temp file from a crash is ignored and removed", async () => {
  await withDir(async (dir) => {
    const store = await SnapshotStore.open(dir, {}, nullLogger);
    await store.save({ index: 10, term: 1, payload: payload(1) });
    await Deno.writeFile(`${dir}/${snapshotName(20, 1)}.tmp`, new Uint8Array(37));
    assertEquals((await store.load())?.index, 10, "temp file is not a snapshot");
    await SnapshotStore.open(dir, {}, nullLogger);
    assertEquals((await names(dir)).join(","), snapshotName(10, 1), "temp removed");
  });
});
