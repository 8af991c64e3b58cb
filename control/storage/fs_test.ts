import { assertEquals } from "../../tests/assert.ts";
import { DenoFs, FaultyFs, FsFaultError, writeAll } from "./fs.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "skein_fs_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("FaultyFs fails the Nth write after landing its partial bytes", async () => {
  await withDir(async (dir) => {
    const fs = new FaultyFs();
    fs.addFault({ op: "write", at: 2, partialBytes: 3 });
    const f = await fs.open(`${dir}/a`, "append");
    await writeAll(f, new Uint8Array([1, 2, 3, 4]));
    let caught: unknown;
    try {
      await writeAll(f, new Uint8Array([5, 6, 7, 8, 9]));
    } catch (e) {
      caught = e;
    }
    await writeAll(f, new Uint8Array([10])); // not sticky: the third write succeeds
    f.close();
    f.close(); // closing twice is harmless
    assertEquals(caught instanceof FsFaultError && caught.code, "ENOSPC", "error code");
    assertEquals((await Deno.readFile(`${dir}/a`)).join(","), "1,2,3,4,5,6,7,10", "file content");
    assertEquals(fs.counts.write, 3, "writes counted");
    assertEquals(fs.fired.length, 1, "one fault fired");
  });
});

Deno.test("FaultyFs sticky faults keep failing and path filters select files", async () => {
  await withDir(async (dir) => {
    const fs = new FaultyFs(new DenoFs(), { maxWriteBytes: 2 });
    fs.failNext("sync", { sticky: true, pathIncludes: "/bravo" });
    const a = await fs.open(`${dir}/a`, "append");
    const b = await fs.open(`${dir}/bravo`, "append");
    assertEquals(await a.write(new Uint8Array(5)), 2, "short write is capped");
    await a.sync();
    for (let i = 0; i < 3; i++) {
      let code = "";
      try {
        await b.sync();
      } catch (e) {
        if (e instanceof FsFaultError) code = e.code;
      }
      assertEquals(code, "EIO", `sync ${i} of b fails`);
    }
    a.close();
    b.close();
    fs.clearFaults();
    await fs.rename(`${dir}/bravo`, `${dir}/c`);
    assertEquals((await fs.readDir(dir)).sort().join(","), "a,c", "rename went through");
  });
});

Deno.test("DenoFs creates directories 0700 and files 0600: the log holds the CA's keys", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const fs = new DenoFs();
    await fs.mkdir(`${dir}/wal`);
    const a = await fs.open(`${dir}/wal/a.log`, "append");
    a.close();
    const b = await fs.open(`${dir}/wal/b.tmp`, "create_new");
    b.close();
    assertEquals((await Deno.stat(`${dir}/wal`)).mode! & 0o777, 0o700);
    assertEquals((await Deno.stat(`${dir}/wal/a.log`)).mode! & 0o777, 0o600);
    assertEquals((await Deno.stat(`${dir}/wal/b.tmp`)).mode! & 0o777, 0o600);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
