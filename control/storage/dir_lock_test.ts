import assert from "node:assert/strict";
import { DataDirInUseError, DataDirLock } from "./dir_lock.ts";

Deno.test("a data directory has one owner; a dead owner's claim is taken over", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-lock-" });
  const sleeper = new Deno.Command("sleep", { args: ["30"] }).spawn();
  try {
    const a = await DataDirLock.acquire(dir);
    await assert.rejects(() => DataDirLock.acquire(dir), DataDirInUseError);
    a.release();
    const b = await DataDirLock.acquire(dir);
    b.release();
    // Left by a process that is gone (a crash): taken over.
    await Deno.writeTextFile(`${dir}/LOCK`, "999999999\n");
    const c = await DataDirLock.acquire(dir);
    c.release();
    // Held by a live process: refused, naming it.
    await Deno.writeTextFile(`${dir}/LOCK`, `${sleeper.pid}\n`);
    await assert.rejects(
      () => DataDirLock.acquire(dir),
      (e: Error) => e instanceof DataDirInUseError && e.message.includes(String(sleeper.pid)),
    );
  } finally {
    sleeper.kill();
    await sleeper.status;
    await Deno.remove(dir, { recursive: true });
  }
});
