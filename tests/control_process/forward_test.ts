/**
 * Follower writes forwarded to the leader over the peer transport (not HTTP): acknowledged only
 * after the leader applied them, and a forward lost at a paused leader ends in 503, not a hang.
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import { ProcessCluster, request, waitFor } from "./cluster.ts";
import { testFetch } from "../tls_fixture.ts";

/** The value of an unlabelled or labelled sample in a node's `/metrics`. */
async function metric(c: ProcessCluster, id: string, sample: string): Promise<number> {
  const res = await testFetch(`${c.api(id)}/metrics`);
  const text = await res.text();
  const line = text.split("\n").find((l) => l.startsWith(sample + " "));
  if (!line) throw new Error(`no sample ${sample} in the metrics of ${id}`);
  return Number(line.slice(sample.length + 1));
}

Deno.test("a follower forwards writes over the peer transport; the ack comes after the leader applied them", async () => {
  const c = await ProcessCluster.create();
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const followers = c.ids().filter((id) => id !== leader);
    // Registering the bootstrap token may be a forwarded write too: let it settle first.
    for (const id of c.ids()) await c.waitAdminToken(c.ids()[0]!, id);
    const answered = 'skein_control_write_forwards_total{result="answered"}';
    const before = new Map<string, number>();
    for (const f of followers) {
      await waitFor(
        `${f} to have no forward in flight`,
        10_000,
        async () =>
          await metric(c, f, "skein_control_write_forwards_in_flight") === 0 ? true : undefined,
      );
      before.set(f, await metric(c, f, answered));
    }
    for (const f of followers) {
      for (let i = 0; i < 5; i++) {
        const r = await c.register(f, "fwd", `${f}-${i}`, { n: String(i) });
        assertEquals(r.status, 201, JSON.stringify(r.json));
        const index = r.json?.index as number;
        assert(index > 0, `no index in ${JSON.stringify(r.json)}`);
        // The leader answers only after applying: its local state already holds the write.
        const onLeader = await request(`${c.api(leader)}/v1/services/fwd?stale=true`);
        const ids = (onLeader.json?.instances as { id: string }[]).map((x) => x.id);
        assert(ids.includes(`${f}-${i}`), `${f}-${i} acknowledged but not on the leader`);
        assert((onLeader.json?.index as number) >= index);
      }
      // Over the transport, not over HTTP.
      assertEquals(await metric(c, f, answered) - before.get(f)!, 5);
      assertEquals(await metric(c, f, "skein_control_api_forwarded_total"), 0);
    }
    // A refusal travels back with its status: deleting what does not exist is a 404.
    const gone = await request(
      `${c.api(followers[0]!)}/v1/services/fwd/instances/nope`,
      "DELETE",
    );
    assertEquals(gone.status, 404, JSON.stringify(gone.json));
  } catch (e) {
    throw new Error(`${e}\n${c.logs()}`);
  } finally {
    await c.destroy();
  }
});

Deno.test("a write forwarded to a paused leader answers 503 within the bound and is all-or-nothing", async () => {
  const c = await ProcessCluster.create({ requestTimeoutMs: 2000 });
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const [a] = c.ids().filter((id) => id !== leader) as [string];
    assertEquals((await c.register(a, "paused", "before")).status, 201);
    await c.signal(leader, "SIGSTOP");
    const t0 = Date.now();
    // Sent at once: the follower still takes the paused node for the leader (its sockets stay
    // open), so the forward is queued to it and never answered.
    const r = await c.register(a, "paused", "lost", {}, 30_000);
    const took = Date.now() - t0;
    assertEquals(r.status, 503, JSON.stringify(r.json));
    assert(took < 15_000, `503 came after ${took} ms`);
    const code = (r.json as { error?: { code?: string } }).error?.code;
    assert(code === "no_quorum" || code === "leader_unreachable", `code ${code}`);
    await c.signal(leader, "SIGCONT");
    await c.waitLeader(30_000, c.ids());
    await c.waitConverged(30_000, c.ids());
    // Whatever became of "lost", every node agrees on it.
    const sets = await waitFor("all nodes to answer", 10_000, async () => {
      const s = await Promise.all(c.ids().map((id) => c.staleInstances(id, "paused")));
      return s.every((x) => x !== null) ? s as Set<string>[] : undefined;
    });
    const present = sets.map((s) => s.has("lost"));
    assert(present.every((p) => p === present[0]), `"lost" half-applied: ${present}`);
    assert(sets.every((s) => s.has("before")));
  } catch (e) {
    throw new Error(`${e}\n${c.logs()}`);
  } finally {
    await c.destroy();
  }
});
