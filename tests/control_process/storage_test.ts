/**
 * Snapshots, compaction and on-disk damage with real `skein control` processes: restart from
 * a snapshot, a lagging follower caught up by InstallSnapshot, a bit flip in the middle of a
 * WAL (refuse to start, naming the file) and a torn tail (start and recover).
 * @module
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { ProcessCluster, sleep, waitFor, waitSameInstances } from "./cluster.ts";

/** Registers `n` instances `prefix-i` with 6 concurrent writers spread over `via`. */
async function _writeMany(c: ProcessCluster, via: string[], prefix: string, n: number) {
  let next = 0;
  const worker = async (w: number) => {
    for (let i = next++; i < n; i = next++) {
      let r = await c.register(via[(w + i) % via.length]!, "snap", `${prefix}-${i}`);
      // A node restarted a moment ago may not know the leader's URL yet: 503, retry (PUT is
      // idempotent). Losing data is what the test checks, not this brief unavailability.
      for (let k = 0; k < 30 && r.status === 503; k++) {
        await sleep(100);
        r = await c.register(via[(w + i) % via.length]!, "snap", `${prefix}-${i}`);
      }
      assert(r.status === 200 || r.status === 201, `${prefix}-${i}: ${JSON.stringify(r.json)}`);
    }
  };
  await Promise.all([0, 1, 2, 3, 4, 5].map(worker));
}

async function _snapshotIndexes(dir: string): Promise<number[]> {
  const out: number[] = [];
  for await (const e of Deno.readDir(`${dir}/snap`)) {
    const m = /^snap-(\d+)-(\d+)\.snap$/.exec(e.name);
    if (m) out.push(Number(m[1]));
  }
  return out.sort((a, b) => a - b);
}

async function _walFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(`${dir}/wal`)) {
    if (/^wal-\d+\.log$/.test(e.name)) out.push(`${dir}/wal/${e.name}`);
  }
  return out.sort();
}

Deno.test("restart with a snapshot keeps the data; a lagging follower catches up by snapshot", async () => {
  const c = await ProcessCluster.create({ snapshotEvery: 50 });
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    await _writeMany(c, c.ids(), "a", 130);
    await c.waitConverged(20_000, c.ids());
    for (const id of c.ids()) {
      const snaps = await _snapshotIndexes(c.node(id).spec.dataDir);
      assert(snaps.some((i) => i >= 50), `${id} took a snapshot past 50: ${snaps}`);
    }
    // A plain restart: snapshot plus WAL tail rebuild the same registry.
    const f1 = c.ids().find((id) => id !== leader)!;
    await c.kill(f1);
    await c.start(f1);
    const before = await c.staleInstances(f1, "snap");
    assertEquals(before?.size, 130, `${f1} has every instance straight after restart`);

    // A follower that misses more than snapshot_every entries gets a snapshot.
    const lagger = c.ids().find((id) => id !== leader && id !== f1)!;
    await c.kill(lagger);
    const live = c.ids().filter((id) => id !== lagger);
    await _writeMany(c, live, "b", 150);
    await c.waitConverged(20_000, live);
    // The leader's transport still queues the appends the lagger missed and would replay
    // them on reconnect; a leader change drops that queue, so the log is really gone.
    assertEquals((await c.signal(leader, "SIGTERM"))?.code, 0);
    await c.start(leader);
    const l = await c.waitLeader(20_000, live);
    await c.waitConverged(20_000, live);
    await c.start(lagger);
    await c.waitConverged(30_000, c.ids());
    const all = await waitSameInstances(c, "snap", c.ids());
    assertEquals(all.size, 280);
    assertMatch(c.node(lagger).stderr, /restoring snapshot/, `${lagger} was caught up by snapshot`);
    assertMatch(c.node(l).stderr, new RegExp(`sending snapshot.*to=${lagger}`));
    // And once more from its own snapshot on disk.
    await c.kill(lagger);
    await c.start(lagger);
    assertEquals((await c.staleInstances(lagger, "snap"))?.size, 280);
  } catch (e) {
    throw new Error(`${e}\n${c.logs()}`);
  } finally {
    await c.destroy();
  }
});

Deno.test("WAL damage: a torn tail is dropped and recovered; a flipped bit mid-log stops the node naming the file", async () => {
  const c = await ProcessCluster.create();
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    await _writeMany(c, c.ids(), "w", 60);
    await c.waitConverged(20_000, c.ids());
    const victim = c.ids().find((id) => id !== leader)!;
    const dir = c.node(victim).spec.dataDir;
    await c.kill(victim);

    // Torn tail: the last record is cut short, as after a crash in the middle of a write.
    const wal = (await _walFiles(dir)).at(-1)!;
    const size = (await Deno.stat(wal)).size;
    await Deno.truncate(wal, size - 7);
    await c.start(victim);
    // The node may answer /v1/health before its log lines have been read from the pipe.
    await waitFor(
      "the restarted node to log the dropped tail",
      20_000,
      () => /dropped a torn tail/.test(c.node(victim).stderr) ? true : undefined,
    );
    // The cut record had been acknowledged, so the leader believes the victim holds it; like
    // etcd, Raft repairs such a node when the next append is rejected, so one write follows.
    assertEquals((await c.register(leader, "snap", "after-restart")).status, 201);
    await c.waitConverged(20_000, c.ids());
    assertEquals((await waitSameInstances(c, "snap", c.ids())).size, 61);

    // A bit flip in the middle: valid records follow the damage, so this is not a torn tail.
    assertEquals((await c.register(leader, "snap", "after-tail")).status, 201);
    await c.waitConverged(20_000, c.ids());
    await c.kill(victim);
    const bytes = await Deno.readFile(wal);
    const mid = Math.floor(bytes.length / 2);
    bytes[mid] = bytes[mid]! ^ 0x10;
    await Deno.writeFile(wal, bytes);
    const before = c.node(victim).stderr.length;
    await c.start(victim, false);
    const st = await c.node(victim).exited!;
    assert(!st.success, "a node with a corrupt WAL must not start");
    assertEquals(st.code, 1);
    const out = c.node(victim).stderr.slice(before);
    assert(out.includes(wal.split("/").at(-1)!), `the error names the file:\n${out}`);
    assertMatch(out, /corrupt|checksum|crc/i);
    // The healthy majority is unaffected.
    const rest = c.ids().filter((id) => id !== victim);
    const l2 = await c.waitLeader(10_000, rest);
    assertEquals((await c.register(l2, "snap", "still-works")).status, 201);
  } catch (e) {
    throw new Error(`${e}\n${c.logs()}`);
  } finally {
    await c.destroy();
  }
});
