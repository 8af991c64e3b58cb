import assert from "node:assert/strict";
import { writeAll } from "../../control/storage/fs.ts";
import { MemFs } from "./mem_fs.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("MemFs: a crash keeps fsynced bytes and tears the unsynced tail", async () => {
  const fs = new MemFs({ random: () => 0.5 });
  await fs.mkdir("/d");
  const f = await fs.open("/d/log", "append");
  await fs.syncDir("/d");
  await writeAll(f, bytes("durable|"));
  await f.sync();
  await writeAll(f, bytes("12345678"));
  const after = fs.crashImage({ random: () => 0.5 });
  // Half of the 8 unsynced bytes survive with random() = 0.5.
  assert.equal(text(await after.readFile("/d/log")), "durable|1234");
  assert.equal(fs.dead, true);
});

Deno.test("MemFs: entries not made durable by syncDir vanish in a crash", async () => {
  const fs = new MemFs({ random: () => 0 });
  await fs.mkdir("/d");
  const a = await fs.open("/d/a", "create_new");
  await writeAll(a, bytes("a"));
  await a.sync();
  await fs.syncDir("/d");
  const b = await fs.open("/d/b.tmp", "create_new");
  await writeAll(b, bytes("b"));
  await b.sync();
  await fs.rename("/d/b.tmp", "/d/b");
  await fs.remove("/d/a");
  const after = fs.crashImage({ random: () => 0 });
  assert.deepEqual(await after.readDir("/d"), ["a"], "the rename and the removal were not synced");
  const fs2 = new MemFs({ random: () => 0 });
  await fs2.mkdir("/d");
  const c = await fs2.open("/d/c.tmp", "create_new");
  await c.sync();
  await fs2.rename("/d/c.tmp", "/d/c");
  await fs2.syncDir("/d");
  assert.deepEqual(await fs2.crashImage({ random: () => 0 }).readDir("/d"), ["c"]);
});

Deno.test("MemFs: the plan crashes a write part way and later operations never return", async () => {
  let crashed = 0;
  const fs = new MemFs({
    random: () => 0.5,
    plan: (op) => (op === "write" ? "crash" : "ok"),
    onCrash: () => crashed++,
  });
  await fs.mkdir("/d");
  const f = await fs.open("/d/x", "append");
  await fs.syncDir("/d");
  let settled = false;
  f.write(bytes("abcd")).finally(() => settled = true);
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(settled, false);
  assert.equal(crashed, 1);
  assert.equal(fs.faults.crashes, 1);
  // Half the buffer ("ab") reached the file before the crash; never synced, it is torn again
  // when the image is taken (half of it survives).
  const after = fs.crashImage({ random: () => 0.5 });
  assert.equal(text(await after.readFile("/d/x")), "a");
});

Deno.test("MemFs: the plan's EIO fails the operation with an injected error", async () => {
  const fs = new MemFs({ random: () => 0.5, plan: (op) => (op === "sync" ? "eio" : "ok") });
  await fs.mkdir("/d");
  const f = await fs.open("/d/x", "append");
  await assert.rejects(f.sync(), /injected EIO on sync/);
});
