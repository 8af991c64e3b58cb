import { assert, assertEquals, assertRejects } from "../../tests/assert.ts";
import { memoryLogger, nullLogger } from "../../common/log.ts";
import { FaultyFs, FsFaultError } from "./fs.ts";
import {
  encodeWalFrames,
  Wal,
  WAL_FRAME_HEADER_BYTES,
  WalClosedError,
  WalCorruptError,
  WalFailedError,
  WalOverloadedError,
  type WalPosition,
  type WalRecord,
  walSegmentName,
} from "./wal.ts";

/** A deterministic record: kind and payload both derive from `i`. */
function rec(i: number, size = 10 + (i * 37) % 90): WalRecord {
  const payload = new Uint8Array(size);
  for (let j = 0; j < size; j++) payload[j] = (i * 31 + j * 7) & 0xff;
  return { kind: i % 4, payload };
}

function assertRecords(got: readonly WalRecord[], want: readonly WalRecord[], msg: string): void {
  assertEquals(got.length, want.length, `${msg}: record count`);
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    assertEquals(g.kind, w.kind, `${msg}: kind of record ${i}`);
    assertEquals(g.payload.length, w.payload.length, `${msg}: payload length of record ${i}`);
    for (let j = 0; j < w.payload.length; j++) {
      if (g.payload[j] !== w.payload[j]) throw new Error(`${msg}: record ${i} byte ${j} differs`);
    }
  }
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "skein_wal_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function writeLog(dir: string, records: WalRecord[], segmentBytes?: number) {
  const { wal } = await Wal.open(dir, { segmentBytes }, nullLogger);
  for (const r of records) await wal.append([r]);
  await wal.close();
}

async function segmentFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

Deno.test("Wal round-trips many records across segment rollovers", async () => {
  await withDir(async (dir) => {
    const want = Array.from({ length: 300 }, (_, i) => rec(i));
    const { wal, records, recovery } = await Wal.open(dir, { segmentBytes: 2048 }, nullLogger);
    assertEquals(records.length, 0, "fresh log is empty");
    assertEquals(recovery.tornTail, null, "fresh log has no torn tail");
    // Mix single appends and multi-record appends.
    for (let i = 0; i < want.length;) {
      const n = 1 + (i % 5);
      await wal.append(want.slice(i, i + n));
      i += n;
    }
    await wal.close();
    const files = await segmentFiles(dir);
    assert(files.length > 5, `expected several segments, got ${files.length}`);
    assertEquals(files[0], walSegmentName(1), "first segment name");
    for (const f of files) {
      const size = (await Deno.stat(`${dir}/${f}`)).size;
      // One append is at most 5 records of < 110 bytes each, so a segment can overshoot
      // the limit only by that much.
      assert(size <= 2048 + 5 * 110, `segment ${f} is ${size} bytes`);
    }

    const reopened = await Wal.open(dir, { segmentBytes: 2048 }, nullLogger);
    assertRecords(reopened.records, want, "after reopen");
    assertEquals(reopened.recovery.segments, files.length, "segments reported");
    assertEquals(reopened.recovery.tornTail, null, "clean log has no torn tail");
    // Segment numbers on records never decrease and end at the active segment.
    let last = 0;
    for (const r of reopened.records) {
      assert(r.segment >= last, "segments ascend");
      last = r.segment;
    }
    assertEquals(last, reopened.recovery.lastSegment, "last record is in the last segment");
    // Appending after reopen continues the same log.
    await reopened.wal.append([rec(1000)]);
    await reopened.wal.close();
    const again = await Wal.open(dir, { segmentBytes: 2048 }, nullLogger);
    assertRecords(again.records, [...want, rec(1000)], "after second reopen");
    await again.wal.close();
  });
});

Deno.test("Wal group commit: 200 concurrent appends share far fewer fsyncs", async () => {
  await withDir(async (dir) => {
    const fs = new FaultyFs();
    const { wal } = await Wal.open(dir, { fs }, nullLogger);
    const syncsBefore = fs.counts.sync;
    const want = Array.from({ length: 200 }, (_, i) => rec(i));
    const positions = await Promise.all(want.map((r) => wal.append([r])));
    const syncs = fs.counts.sync - syncsBefore;
    assert(syncs >= 1, "at least one fsync happened");
    assert(syncs <= 20, `200 concurrent appends took ${syncs} fsyncs`);
    assertEquals(wal.stats().fsyncs, syncs, "stats count the same fsyncs");
    assertEquals(wal.stats().appends, 200, "stats count appends");
    // Positions are strictly increasing in call order: records land in call order.
    for (let i = 1; i < positions.length; i++) {
      assert(positions[i]!.offset > positions[i - 1]!.offset, `position ${i} after ${i - 1}`);
    }
    await wal.close();
    const { records, wal: w2 } = await Wal.open(dir, {}, nullLogger);
    assertRecords(records, want, "reopened in call order");
    await w2.close();
  });
});

Deno.test("Wal appends serially each get their own fsync (the counter is real)", async () => {
  await withDir(async (dir) => {
    const fs = new FaultyFs();
    const { wal } = await Wal.open(dir, { fs }, nullLogger);
    const before = fs.counts.sync;
    for (let i = 0; i < 10; i++) await wal.append([rec(i)]);
    assertEquals(fs.counts.sync - before, 10, "one fsync per awaited append");
    await wal.close();
  });
});

Deno.test("Wal applies backpressure: no batch exceeds the queue bound", async () => {
  await withDir(async (dir) => {
    const { wal } = await Wal.open(dir, { queueMaxAppends: 4 }, nullLogger);
    const want = Array.from({ length: 100 }, (_, i) => rec(i));
    await Promise.all(want.map((r) => wal.append([r])));
    const s = wal.stats();
    assert(s.maxBatchAppends <= 4, `a batch held ${s.maxBatchAppends} appends`);
    assert(s.maxBatchAppends > 1, "batches still group appends");
    await wal.close();
    const { records, wal: w2 } = await Wal.open(dir, {}, nullLogger);
    assertRecords(records, want, "blocked appends keep call order");
    await w2.close();
  });
});

Deno.test("Wal recovers the prefix when the last record is cut at every byte offset", async () => {
  await withDir(async (dir) => {
    const want = Array.from({ length: 6 }, (_, i) => rec(i, 20));
    await writeLog(dir, want);
    const path = `${dir}/${walSegmentName(1)}`;
    const full = await Deno.readFile(path);
    const lastLen = WAL_FRAME_HEADER_BYTES + 1 + 20;
    const lastStart = full.length - lastLen;
    for (let cut = lastStart; cut < full.length; cut++) {
      await Deno.writeFile(path, full.subarray(0, cut));
      const log = memoryLogger();
      const { wal, records, recovery } = await Wal.open(dir, {}, log);
      assertRecords(records, want.slice(0, 5), `cut at ${cut}`);
      if (cut === lastStart) {
        assertEquals(recovery.tornTail, null, "a cut at a record boundary is a clean log");
      } else {
        assert(recovery.tornTail !== null, `cut at ${cut} reports a torn tail`);
        assertEquals(recovery.tornTail.offset, lastStart, "torn tail starts at the cut record");
        assertEquals(recovery.tornTail.droppedBytes, cut - lastStart, "dropped bytes");
        assert(log.lines.some((l) => l.includes("torn tail")), "torn tail is logged as a warning");
      }
      assertEquals(
        (await Deno.stat(path)).size,
        lastStart,
        "file truncated to the last good record",
      );
      if (cut % 7 === 0) {
        // Appending after recovery lands right after the good prefix.
        await wal.append([rec(99)]);
        await wal.close();
        const again = await Wal.open(dir, {}, nullLogger);
        assertRecords(again.records, [...want.slice(0, 5), rec(99)], `append after cut ${cut}`);
        await again.wal.close();
      } else {
        await wal.close();
      }
    }
  });
});

Deno.test("Wal reports a flipped bit mid-file as WalCorruptError with file and offset", async () => {
  await withDir(async (dir) => {
    const want = Array.from({ length: 10 }, (_, i) => rec(i, 30));
    await writeLog(dir, want);
    const path = `${dir}/${walSegmentName(1)}`;
    const full = await Deno.readFile(path);
    const frame = WAL_FRAME_HEADER_BYTES + 1 + 30;
    // Flip a bit in the payload, the CRC and the length of record 4 in turn.
    for (const within of [20, 5, 1]) {
      const bad = full.slice();
      bad[4 * frame + within]! ^= 0x10;
      await Deno.writeFile(path, bad);
      const err = await assertRejects(
        Wal.open(dir, {}, nullLogger),
        WalCorruptError,
        `flip at ${within}`,
      );
      assertEquals(err.file, path, "error names the file");
      assertEquals(err.offset, 4 * frame, "error names the offset of the damaged record");
      assert(err.message.includes(path), "message names the file");
      const after = await Deno.readFile(path);
      assertEquals(after.length, bad.length, "nothing was truncated");
    }
  });
});

Deno.test("Wal reports damage in a non-last segment as corrupt, even at its end", async () => {
  await withDir(async (dir) => {
    await writeLog(dir, Array.from({ length: 40 }, (_, i) => rec(i, 50)), 512);
    const files = await segmentFiles(dir);
    assert(files.length >= 3, "several segments");
    const path = `${dir}/${files[0]}`;
    const bytes = await Deno.readFile(path);
    bytes[bytes.length - 1]! ^= 1;
    await Deno.writeFile(path, bytes);
    const err = await assertRejects(Wal.open(dir, {}, nullLogger), WalCorruptError, "segment 1");
    assertEquals(err.file, path, "names the first segment");
  });
});

Deno.test("Wal reports a missing middle segment as corrupt", async () => {
  await withDir(async (dir) => {
    await writeLog(dir, Array.from({ length: 40 }, (_, i) => rec(i, 50)), 512);
    await Deno.remove(`${dir}/${walSegmentName(2)}`);
    const err = await assertRejects(Wal.open(dir, {}, nullLogger), WalCorruptError, "gap");
    assert(err.file.endsWith(walSegmentName(2)), "names the missing segment");
  });
});

Deno.test("Wal treats a flipped bit in the last record as a torn tail", async () => {
  await withDir(async (dir) => {
    const want = Array.from({ length: 5 }, (_, i) => rec(i, 30));
    await writeLog(dir, want);
    const path = `${dir}/${walSegmentName(1)}`;
    const bytes = await Deno.readFile(path);
    bytes[bytes.length - 3]! ^= 0x01;
    await Deno.writeFile(path, bytes);
    const { wal, records, recovery } = await Wal.open(dir, {}, nullLogger);
    assertRecords(records, want.slice(0, 4), "prefix");
    assert(recovery.tornTail?.reason.includes("checksum"), "reason names the checksum");
    await wal.close();
  });
});

Deno.test("Wal treats a zero-filled tail as torn, and zeros followed by data as corrupt", async () => {
  await withDir(async (dir) => {
    const want = Array.from({ length: 5 }, (_, i) => rec(i));
    await writeLog(dir, want);
    const path = `${dir}/${walSegmentName(1)}`;
    const good = await Deno.readFile(path);
    const padded = new Uint8Array(good.length + 4096);
    padded.set(good);
    await Deno.writeFile(path, padded);
    const { wal, records, recovery } = await Wal.open(dir, {}, nullLogger);
    assertRecords(records, want, "all records survive");
    assertEquals(recovery.tornTail?.droppedBytes, 4096, "the zeros are dropped");
    await wal.close();

    // Zeros and then a valid record: that is a hole in the middle, not a tail.
    const holed = new Uint8Array(good.length + 100 + 50);
    holed.set(good);
    holed.set(encodeWalFrames([rec(7, 20)]), good.length + 100);
    await Deno.writeFile(path, holed);
    const err = await assertRejects(Wal.open(dir, {}, nullLogger), WalCorruptError, "hole");
    assertEquals(err.offset, good.length, "offset of the hole");
  });
});

Deno.test("Wal disk full during append: clear error, refusal, and a clean reopen", async () => {
  await withDir(async (dir) => {
    const fs = new FaultyFs();
    const { wal } = await Wal.open(dir, { fs }, nullLogger);
    const acked = Array.from({ length: 5 }, (_, i) => rec(i, 40));
    for (const r of acked) await wal.append([r]);
    // The disk fills part way through the next write, and the truncate back fails too, so
    // the half-written batch really is left on disk for recovery to deal with.
    fs.failNext("write", { partialBytes: 70, sticky: true });
    fs.failNext("truncate");
    const failedBatch = [rec(10, 40), rec(11, 40), rec(12, 40)];
    const concurrent = wal.append([rec(13, 40)]);
    const err = await assertRejects(wal.append(failedBatch), WalFailedError, "failed append");
    assert(err.cause instanceof FsFaultError && err.cause.code === "ENOSPC", "cause is ENOSPC");
    assert(err.message.includes(walSegmentName(1)), "message names the segment");
    await assertRejects(concurrent, WalFailedError, "the batch sharing the write");
    await assertRejects(wal.append([rec(14)]), WalFailedError, "later append is refused");
    assert(wal.failure !== null, "failure is exposed");
    await wal.close();

    const size = (await Deno.stat(`${dir}/${walSegmentName(1)}`)).size;
    const frame = WAL_FRAME_HEADER_BYTES + 1 + 40;
    assertEquals(size, 5 * frame + 70, "partial bytes really reached the file");
    const re = await Wal.open(dir, {}, nullLogger);
    // 70 bytes hold one whole 49-byte frame of the failed write (the concurrent append came
    // first): a rejected append may survive, like after a crash; nothing half-written does.
    assertRecords(re.records, [...acked, rec(13, 40)], "acked records plus a whole frame");
    assert(re.recovery.tornTail !== null, "the partial frame is a torn tail");
    await re.wal.append([rec(20)]);
    await re.wal.close();
    const again = await Wal.open(dir, {}, nullLogger);
    assertRecords(again.records, [...acked, rec(13, 40), rec(20)], "appends work again");
    await again.wal.close();
  });
});

Deno.test("Wal truncates back to the last durable offset after a failed write", async () => {
  await withDir(async (dir) => {
    const fs = new FaultyFs();
    const { wal } = await Wal.open(dir, { fs }, nullLogger);
    await wal.append([rec(1), rec(2)]);
    const durable = wal.position.offset;
    fs.failNext("write", { partialBytes: 13 });
    await assertRejects(wal.append([rec(3)]), WalFailedError, "failed write");
    assertEquals((await Deno.stat(`${dir}/${walSegmentName(1)}`)).size, durable, "truncated back");
    await wal.close();
    const re = await Wal.open(dir, {}, nullLogger);
    assertRecords(re.records, [rec(1), rec(2)], "only the acked records");
    assertEquals(re.recovery.tornTail, null, "no torn tail left");
    await re.wal.close();
  });
});

Deno.test("Wal fsync failure rejects the append and refuses later ones", async () => {
  await withDir(async (dir) => {
    const fs = new FaultyFs();
    const { wal } = await Wal.open(dir, { fs }, nullLogger);
    await wal.append([rec(1)]);
    fs.failNext("sync");
    const err = await assertRejects(wal.append([rec(2)]), WalFailedError, "fsync");
    assert(err.cause instanceof FsFaultError && err.cause.code === "EIO", "cause is EIO");
    await assertRejects(wal.append([rec(3)]), WalFailedError, "refused afterwards");
    await wal.close();
  });
});

Deno.test("Wal handles short writes", async () => {
  await withDir(async (dir) => {
    const fs = new FaultyFs(undefined, { maxWriteBytes: 7 });
    const { wal } = await Wal.open(dir, { fs }, nullLogger);
    const want = Array.from({ length: 20 }, (_, i) => rec(i));
    await Promise.all(want.map((r) => wal.append([r])));
    await wal.close();
    const re = await Wal.open(dir, {}, nullLogger);
    assertRecords(re.records, want, "records intact");
    await re.wal.close();
  });
});

Deno.test("Wal.releaseBefore drops whole old segments but never the active one", async () => {
  await withDir(async (dir) => {
    const { wal } = await Wal.open(dir, { segmentBytes: 512 }, nullLogger);
    const positions: WalPosition[] = [];
    const want = Array.from({ length: 40 }, (_, i) => rec(i, 50));
    for (const r of want) positions.push(await wal.append([r]));
    const segs = wal.segments;
    assert(segs.length >= 4, "several segments");
    const cut = positions[20]!.segment;
    const removed = await wal.releaseBefore(cut);
    assertEquals(removed, cut - 1, "segments before the cut are removed");
    assertEquals(wal.segments[0], cut, "first kept segment");
    assertEquals(await wal.releaseBefore(10_000), segs.length - cut, "the rest but the active one");
    assertEquals(wal.segments.length, 1, "only the active segment remains");
    await wal.append([rec(100)]);
    await wal.close();
    const re = await Wal.open(dir, {}, nullLogger);
    const kept = want.filter((_, i) => positions[i]!.segment >= segs[segs.length - 1]!);
    assertRecords(re.records, [...kept, rec(100)], "records of kept segments");
    await re.wal.close();
  });
});

Deno.test("Wal rejects appends after close and invalid records", async () => {
  await withDir(async (dir) => {
    const { wal } = await Wal.open(dir, {}, nullLogger);
    await assertRejects(
      wal.append([{ kind: 256, payload: new Uint8Array(1) }]),
      RangeError,
      "kind",
    );
    await assertRejects(
      wal.append([{ kind: 1.5, payload: new Uint8Array(1) }]),
      RangeError,
      "kind",
    );
    const pending = wal.append([rec(1)]);
    await wal.close();
    await pending; // accepted before close, so close waits for it
    await assertRejects(wal.append([rec(2)]), WalClosedError, "after close");
    const re = await Wal.open(dir, {}, nullLogger);
    assertRecords(re.records, [rec(1)], "the accepted append is durable");
    await re.wal.close();
  });
});

Deno.test("Wal fails cleanly when rolling to a new segment fails", async () => {
  await withDir(async (dir) => {
    const fs = new FaultyFs();
    const { wal } = await Wal.open(dir, { fs, segmentBytes: 256 }, nullLogger);
    const acked = Array.from({ length: 4 }, (_, i) => rec(i, 50));
    for (const r of acked) await wal.append([r]);
    assertEquals(wal.segments.length, 1, "still one segment");
    fs.failNext("open");
    await assertRejects(wal.append([rec(9, 50)]), WalFailedError, "roll fails");
    await assertRejects(wal.append([rec(10)]), WalFailedError, "refused afterwards");
    await wal.close();
    const re = await Wal.open(dir, { segmentBytes: 256 }, nullLogger);
    assertRecords(re.records, acked, "acked records survive");
    await re.wal.append([rec(11, 50)]);
    assertEquals(re.wal.segments.length, 2, "the reopened log rolls normally");
    await re.wal.close();
  });
});

Deno.test("Wal rejects appends beyond the blocked bound with WalOverloadedError", async () => {
  await withDir(async (dir) => {
    const { wal } = await Wal.open(dir, { queueMaxAppends: 1, blockedMaxAppends: 2 }, nullLogger);
    // All five arrive in one tick, before the first write starts: one queues, two wait for
    // room, the last two are refused.
    const ps = Array.from({ length: 5 }, (_, i) => wal.append([rec(i)]));
    const results = await Promise.allSettled(ps);
    const refused = results.filter((r) =>
      r.status === "rejected" && r.reason instanceof WalOverloadedError
    );
    assertEquals(refused.length, 2, "two appends refused");
    assertEquals(results[3]!.status, "rejected", "the fourth is refused");
    assertEquals(results[4]!.status, "rejected", "the fifth is refused");
    await wal.close();
    const re = await Wal.open(dir, {}, nullLogger);
    assertRecords(re.records, [rec(0), rec(1), rec(2)], "the admitted appends, in order");
    await re.wal.close();
  });
});

Deno.test("Wal append with sync: false writes without fsync; a synced append covers it", async () => {
  await withDir(async (dir) => {
    const fs = new FaultyFs();
    const { wal } = await Wal.open(dir, { fs }, nullLogger);
    const before = fs.counts.sync;
    for (let i = 0; i < 5; i++) await wal.append([rec(i)], { sync: false });
    assertEquals(fs.counts.sync - before, 0, "unsynced appends cost no fsync");
    assertEquals(wal.stats().fsyncs, 0, "stats agree");
    // A batch mixing both kinds is synced once for all of them.
    await Promise.all([wal.append([rec(5)], { sync: false }), wal.append([rec(6)])]);
    assertEquals(fs.counts.sync - before, 1, "one fsync for the mixed batch");
    await wal.append([rec(7)], { sync: false });
    await wal.close();
    assertEquals(fs.counts.sync - before, 2, "close syncs the unsynced tail (best effort)");
    const { records, wal: w2 } = await Wal.open(dir, {}, nullLogger);
    assertRecords(records, Array.from({ length: 8 }, (_, i) => rec(i)), "all records readable");
    await w2.close();
  });
});

Deno.test("Wal syncs unsynced records before rolling to a new segment", async () => {
  await withDir(async (dir) => {
    const fs = new FaultyFs();
    const { wal } = await Wal.open(dir, { fs, segmentBytes: 256 }, nullLogger);
    const before = fs.counts.sync;
    const want = Array.from({ length: 12 }, (_, i) => rec(i, 60));
    for (const r of want) await wal.append([r], { sync: false });
    assert(wal.segments.length > 1, "the log rolled over");
    // Each roll closes a segment that must be whole on disk: one fsync per roll, none else.
    assertEquals(fs.counts.sync - before, wal.segments.length - 1, "one fsync per roll");
    await wal.close();
    const { records, wal: w2 } = await Wal.open(dir, {}, nullLogger);
    assertRecords(records, want, "reopened across segments");
    await w2.close();
  });
});

Deno.test("Wal.open creates a directory that does not exist yet and keeps what is appended", async () => {
  await withDir(async (parent) => {
    const dir = `${parent}/not/yet/there`;
    const { wal, records } = await Wal.open(dir, {}, nullLogger);
    assertEquals(records.length, 0, "a new log is empty");
    await wal.append([rec(1)]);
    await wal.close();
    const again = await Wal.open(dir, {}, nullLogger);
    assertRecords(again.records, [rec(1)], "reopened");
    await again.wal.close();
  });
});
