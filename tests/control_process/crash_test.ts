/**
 * Crash and pause tests of real `skein control` processes: SIGKILL and SIGSTOP of the leader
 * under a stream of writes, a write without quorum, and a graceful SIGTERM.
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import {
  ProcessCluster,
  request,
  sleep,
  waitFor,
  waitSameInstances,
  WriteStream,
} from "./cluster.ts";

/** Checks that every acknowledged id is on every node and all nodes agree exactly. */
async function assertAckedEverywhere(
  c: ProcessCluster,
  service: string,
  acked: Set<string>,
): Promise<Set<string>> {
  await c.waitConverged(30_000, c.ids());
  const same = await waitSameInstances(c, service, c.ids());
  const missing = [...acked].filter((id) => !same.has(id));
  assertEquals(missing, [], `acknowledged writes missing after recovery`);
  return same;
}

Deno.test("kill -9 the leader in a stream of writes: every acknowledged write is on all nodes after the victim restarts", async () => {
  const c = await ProcessCluster.create();
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const load = new WriteStream(c, "acked", c.ids(), 2);
    await waitFor(
      "writes before the crash",
      20_000,
      () => load.log.acked.size >= 30 ? true : undefined,
    );
    const st = await c.kill(leader);
    assert(st && !st.success, `SIGKILL ends ${leader} abnormally`);
    const before = load.log.acked.size;
    const survivors = c.ids().filter((id) => id !== leader);
    const newLeader = await c.waitLeader(20_000, survivors);
    assert(newLeader !== leader);
    // The survivors keep accepting writes without the victim.
    await waitFor(
      "writes on the survivors",
      20_000,
      () => load.log.acked.size >= before + 30 ? true : undefined,
    );
    await c.start(leader);
    await waitFor(
      "writes after the restart",
      20_000,
      () => load.log.acked.size >= before + 60 ? true : undefined,
    );
    const log = await load.stop();
    const final = await assertAckedEverywhere(c, "acked", log.acked);
    // Nothing appears that no writer ever sent.
    for (const id of final) {
      assert(log.acked.has(id) || log.uncertain.has(id), `unexpected instance ${id}`);
    }
    assert(log.acked.size >= 90, `acked ${log.acked.size}`);
  } catch (e) {
    throw new Error(`${e}\n${c.logs()}`);
  } finally {
    await c.destroy();
  }
});

Deno.test("SIGSTOP the leader for 3 s and resume: no acknowledged write is lost and the cluster converges", async () => {
  const c = await ProcessCluster.create();
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const termBefore = (await c.health(leader))!.term;
    const load = new WriteStream(c, "paused", c.ids(), 2);
    await waitFor(
      "writes before the pause",
      20_000,
      () => load.log.acked.size >= 30 ? true : undefined,
    );
    await c.signal(leader, "SIGSTOP");
    const pausedAt = load.log.acked.size;
    const survivors = c.ids().filter((id) => id !== leader);
    try {
      const next = await c.waitLeader(10_000, survivors);
      assert(next !== leader);
      await waitFor(
        "writes during the pause",
        10_000,
        () => load.log.acked.size >= pausedAt + 20 ? true : undefined,
      );
      await sleep(Math.max(0, 3000));
    } finally {
      await c.signal(leader, "SIGCONT");
    }
    // The old leader learns of the newer term, steps down and follows.
    const h = await waitFor(`${leader} to step down`, 20_000, async () => {
      const x = await c.health(leader);
      return x && x.role === "follower" && x.leader !== null && x.leader !== leader ? x : undefined;
    });
    assert(h.term > termBefore, `term moved from ${termBefore} to ${h.term}`);
    const resumed = load.log.acked.size;
    await waitFor(
      "writes after the resume",
      20_000,
      () => load.log.acked.size >= resumed + 20 ? true : undefined,
    );
    const log = await load.stop();
    await assertAckedEverywhere(c, "paused", log.acked);
  } catch (e) {
    throw new Error(`${e}\n${c.logs()}`);
  } finally {
    await c.destroy();
  }
});

Deno.test("a write that cannot reach a quorum gets 503 within a bounded time and is then all-or-nothing", async () => {
  // A short request timeout keeps the test quick; the bound is what is checked.
  const c = await ProcessCluster.create({ requestTimeoutMs: 2000 });
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    assertEquals((await c.register(leader, "quorum", "before")).status, 201);
    await c.waitConverged(20_000, c.ids());
    const others = c.ids().filter((id) => id !== leader);
    for (const id of others) await c.kill(id);
    const t0 = Date.now();
    const r = await c.register(leader, "quorum", "lonely", {}, 30_000);
    const took = Date.now() - t0;
    assertEquals(r.status, 503, JSON.stringify(r.json));
    // The bound: the configured write timeout, plus slack for a busy machine; never "hangs".
    assert(took < 15_000, `503 came after ${took} ms`);
    const err = (r.json as { error?: { code?: string } }).error;
    assert(err?.code === "no_quorum" || err?.code === "not_leader" || err?.code === "no_leader");
    // A follower that lost its leader answers 503 too, it does not hang either.
    for (const id of others) await c.start(id);
    // A new leader's term starts with an entry that commits (or drops) "lonely"; until a write
    // of this term commits, every node can agree on an index that still leaves it undecided.
    await waitFor("a write after the restart", 30_000, async () => {
      const back = await c.waitLeader(30_000, c.ids());
      return (await c.register(back, "quorum", "after")).status === 201 ? true : undefined;
    });
    await c.waitConverged(30_000, c.ids());
    const sets = await Promise.all(c.ids().map((id) => c.staleInstances(id, "quorum")));
    const present = sets.map((s) => s!.has("lonely"));
    assert(present.every((p) => p === present[0]), `"lonely" half-applied: ${present}`);
    assert(sets.every((s) => s!.has("before") && s!.has("after")));
  } catch (e) {
    throw new Error(`${e}\n${c.logs()}`);
  } finally {
    await c.destroy();
  }
});

Deno.test("a follower without a leader answers a write with 503 within a bounded time", async () => {
  const c = await ProcessCluster.create({ requestTimeoutMs: 2000 });
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const [a, b] = c.ids().filter((id) => id !== leader) as [string, string];
    await c.kill(leader);
    await c.kill(b);
    const t0 = Date.now();
    const r = await c.register(a, "quorum", "via-follower", {}, 30_000);
    assertEquals(r.status, 503, JSON.stringify(r.json));
    assert(Date.now() - t0 < 15_000, `503 came after ${Date.now() - t0} ms`);
  } catch (e) {
    throw new Error(`${e}\n${c.logs()}`);
  } finally {
    await c.destroy();
  }
});

Deno.test("SIGTERM on the leader hands leadership off and exits 0", async () => {
  const c = await ProcessCluster.create();
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    assertEquals((await c.register(leader, "term", "a")).status, 201);
    const st = await c.signal(leader, "SIGTERM");
    assertEquals(st?.code, 0, c.node(leader).stderr);
    assert(/leadership handed off/.test(c.node(leader).stderr), "the log says it handed off");
    const survivors = c.ids().filter((id) => id !== leader);
    const next = await c.waitLeader(10_000, survivors);
    assert(next !== leader);
    const r = await request(`${c.api(next)}/v1/services/term?stale=true`);
    assertEquals(r.status, 200);
    assertEquals((await c.register(next, "term", "b")).status, 201);
  } catch (e) {
    throw new Error(`${e}\n${c.logs()}`);
  } finally {
    await c.destroy();
  }
});
