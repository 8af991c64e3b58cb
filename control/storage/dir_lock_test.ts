import assert from "node:assert/strict";
import { DataDirInUseError, DataDirLock } from "./dir_lock.ts";

Deno.test("a data directory has one owner in a process too; release lets the next claim it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-lock-" });
  try {
    const a = await DataDirLock.acquire(dir);
    await assert.rejects(() => DataDirLock.acquire(dir), DataDirInUseError);
    a.release();
    a.release(); // twice is harmless
    const b = await DataDirLock.acquire(dir);
    assert.equal((await Deno.readTextFile(`${dir}/LOCK`)).trim(), String(Deno.pid));
    b.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
