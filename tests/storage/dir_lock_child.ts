/**
 * Child process for dir_lock_test.ts: claims DIR's data-dir lock and prints `locked`, then holds
 * it until killed; prints `in_use <message>` and exits 3 when another process holds it.
 *
 * Usage: `deno run --allow-read --allow-write dir_lock_child.ts DIR`.
 * @module
 */

import { DataDirInUseError, DataDirLock } from "../../control/storage/dir_lock.ts";

async function main(): Promise<void> {
  const dir = Deno.args[0];
  if (!dir) throw new Error("usage: dir_lock_child.ts DIR");
  try {
    await DataDirLock.acquire(dir);
  } catch (e) {
    if (!(e instanceof DataDirInUseError)) throw e;
    console.log(`in_use ${e.message}`);
    Deno.exit(3);
  }
  console.log("locked");
  // Hold the claim until killed.
  setInterval(() => {}, 60_000);
}

await main();
