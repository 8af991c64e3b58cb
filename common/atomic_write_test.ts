import { assertEquals, assertRejects } from "../tests/assert.ts";
import { dirOf, syncDir, writeFileAtomic } from "./atomic_write.ts";

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

Deno.test("writeFileAtomic replaces the file whole, with its mode exact, and leaves no temp file", async () => {
  const dir = await Deno.makeTempDir();
  const old = Deno.umask(0o022);
  try {
    const path = `${dir}/identity.json`;
    await Deno.writeTextFile(path, "old content, longer than the new one");
    await Deno.chmod(path, 0o644);
    await writeFileAtomic(path, "new", { mode: 0o600 });
    assertEquals(await Deno.readTextFile(path), "new");
    assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
    await writeFileAtomic(path, new Uint8Array([0x41, 0x42]));
    assertEquals(await Deno.readTextFile(path), "AB");
    assertEquals(await names(dir), ["identity.json"]);
  } finally {
    Deno.umask(old);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeFileAtomic removes its temp file when the rename fails and keeps what was there", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A non-empty directory in the target's place: the rename over it must fail.
    await Deno.mkdir(`${dir}/catalog.json`);
    await Deno.writeTextFile(`${dir}/catalog.json/keep`, "kept");
    await assertRejects(() => writeFileAtomic(`${dir}/catalog.json`, "x"), Error);
    assertEquals(await names(dir), ["catalog.json"]);
    assertEquals(await Deno.readTextFile(`${dir}/catalog.json/keep`), "kept");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeFileAtomic fails plainly when the directory is missing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assertRejects(() => writeFileAtomic(`${dir}/nope/x`, "x"), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("syncDir tolerates a directory it cannot open; dirOf splits paths", async () => {
  await syncDir("/nonexistent/skein/dir");
  assertEquals(dirOf("/a/b/c"), "/a/b");
  assertEquals(dirOf("/c"), "/");
  assertEquals(dirOf("c"), ".");
});
