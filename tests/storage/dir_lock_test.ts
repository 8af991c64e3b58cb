import { assert, assertEquals } from "../assert.ts";
import { DataDirInUseError, DataDirLock } from "../../control/storage/dir_lock.ts";

const CHILD = new URL("./dir_lock_child.ts", import.meta.url).pathname;

/** A child process trying to claim `dir`; `first` is its first line (`locked` / `in_use …`). */
interface Claimant {
  child: Deno.ChildProcess;
  first: string;
}

/** Spawns a claimant on `dir` and waits for its first line. */
async function claim(dir: string): Promise<Claimant> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", CHILD, dir],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (!buf.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
  }
  reader.releaseLock();
  return { child, first: buf.split("\n")[0] ?? "" };
}

/** Kills `c` with SIGKILL (if still running) and reaps it. */
async function kill(c: Claimant): Promise<void> {
  try {
    c.child.kill("SIGKILL");
  } catch {
    // Exited already.
  }
  await c.child.status;
  await c.child.stdout.cancel().catch(() => {});
}

Deno.test("two live processes never share a data directory; a kill -9'd owner never blocks the next", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-lock-" });
  const started: Claimant[] = [];
  try {
    const a = await claim(dir);
    started.push(a);
    assertEquals(a.first, "locked");
    // A second live process is refused, and the message names the holder.
    const b = await claim(dir);
    started.push(b);
    assert(b.first.startsWith("in_use "), `second claimant: ${b.first}`);
    assert(b.first.includes(String(a.child.pid)), b.first);
    assertEquals((await b.child.status).code, 3);
    // This process is refused as well while the child holds it.
    let refused = false;
    try {
      (await DataDirLock.acquire(dir)).release();
    } catch (e) {
      refused = e instanceof DataDirInUseError;
    }
    assert(refused, "the parent claimed a directory a live child holds");
    // The owner dies without cleaning up; its LOCK file stays, naming its pid.
    await kill(a);
    assertEquals((await Deno.readTextFile(`${dir}/LOCK`)).trim(), String(a.child.pid));
    const c = await claim(dir);
    started.push(c);
    assertEquals(c.first, "locked", "a restart after kill -9 was refused");
  } finally {
    for (const c of started) await kill(c);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a LOCK file naming a live process that holds no lock does not block a start", async () => {
  // A reused pid: the file names a live process that is not a node (here, this test's sleeper).
  const dir = await Deno.makeTempDir({ prefix: "skein-lock-" });
  const sleeper = new Deno.Command("sleep", { args: ["30"] }).spawn();
  try {
    await Deno.writeTextFile(`${dir}/LOCK`, `${sleeper.pid}\n`);
    const c = await claim(dir);
    try {
      assertEquals(c.first, "locked");
    } finally {
      await kill(c);
    }
  } finally {
    sleeper.kill();
    await sleeper.status;
    await Deno.remove(dir, { recursive: true });
  }
});
