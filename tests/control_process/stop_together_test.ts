/**
 * A whole cluster stopped at once, as a terminal's Ctrl-C stops `skein demo` (SIGINT to every
 * process of the group) and as the demo then stops its children (SIGTERM to each): every node
 * must still stop gracefully, exit 0 and log `stopped`, even though its peers are gone.
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import { ProcessCluster, waitFor } from "./cluster.ts";

/** How long a node may take to stop before the test calls it hung and SIGKILLs it. */
const HUNG_AFTER_MS = 30_000;

/** Sends `signal` to every running node at once; SIGKILLs any that is still up after the bound. */
function signalAll(c: ProcessCluster, signal: Deno.Signal): { hung: Set<string> } {
  const hung = new Set<string>();
  for (const id of c.running()) {
    const n = c.node(id);
    n.child!.kill(signal);
    const t = setTimeout(() => {
      hung.add(id);
      try {
        n.child?.kill("SIGKILL");
      } catch { /* already gone */ }
    }, HUNG_AFTER_MS);
    n.exited!.finally(() => clearTimeout(t));
  }
  return { hung };
}

/** Waits for every node's exit and checks each exited 0 by itself and logged `stopped`. */
async function assertAllStopped(c: ProcessCluster, hung: Set<string>): Promise<void> {
  const ids = c.ids();
  const codes = await Promise.all(ids.map((id) => c.node(id).exited!));
  for (const [i, id] of ids.entries()) {
    const log = c.node(id).stderr;
    assert(!hung.has(id), `${id} did not stop within ${HUNG_AFTER_MS} ms:\n${log}`);
    assertEquals(codes[i]!.code, 0, `${id} exit code (signal ${codes[i]!.signal}):\n${log}`);
    assert(/msg=stopped/.test(log), `${id} never logged stopped:\n${log}`);
  }
}

Deno.test("SIGINT to all three control nodes at once: each exits 0 and logs stopped", async () => {
  const c = await ProcessCluster.create();
  try {
    await c.startAll();
    await c.waitLeader();
    const { hung } = signalAll(c, "SIGINT");
    await assertAllStopped(c, hung);
  } catch (e) {
    throw new Error(`${e}\n${c.logs()}`);
  } finally {
    await c.destroy();
  }
});

Deno.test("SIGINT to all, then SIGTERM while they stop (Ctrl-C on the demo): each exits 0", async () => {
  const c = await ProcessCluster.create();
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const { hung } = signalAll(c, "SIGINT");
    // The leader's hand-off to peers that are gone is the longest stop: signal it mid-way.
    await waitFor(`${leader} to start stopping`, HUNG_AFTER_MS, () => {
      const n = c.node(leader);
      return n.child === null || /msg=stopping/.test(n.stderr) ? true : undefined;
    });
    for (const id of c.running()) {
      try {
        c.node(id).child!.kill("SIGTERM");
      } catch { /* it finished stopping between the check and the signal: nothing to send */ }
    }
    await assertAllStopped(c, hung);
  } catch (e) {
    throw new Error(`${e}\n${c.logs()}`);
  } finally {
    await c.destroy();
  }
});
