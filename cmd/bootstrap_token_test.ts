import { assert, assertEquals, assertMatch } from "../tests/assert.ts";
import { memoryLogger, nullLogger } from "../common/log.ts";
import { ensureBootstrapToken, TOKEN_PREFIX } from "./bootstrap_token.ts";

Deno.test("ensureBootstrapToken() creates a 0600 token file once and then reads it back", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/sub/admin.token`;
    const a = await ensureBootstrapToken(path, nullLogger);
    assert(a.startsWith(TOKEN_PREFIX));
    assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
    assertEquals(await ensureBootstrapToken(path, nullLogger), a);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ensureBootstrapToken() called concurrently for one file agrees on a single token", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/admin.token`;
    const tokens = await Promise.all(
      Array.from({ length: 8 }, () => ensureBootstrapToken(path, nullLogger)),
    );
    assertEquals(new Set(tokens).size, 1, `tokens: ${tokens}`);
    assertEquals((await Deno.readTextFile(path)).trim(), tokens[0]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ensureBootstrapToken() refuses a file holding a too-short token", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/admin.token`;
    await Deno.writeTextFile(path, "short\n");
    const e = await ensureBootstrapToken(path, nullLogger).catch((e) => e as Error);
    assertMatch(String(e), /token is too short/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ensureBootstrapToken() warns about a short hand-written token, not a generated one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const short = `${dir}/short.token`;
    await Deno.writeTextFile(short, "CompanyAdmin2026!\n", { mode: 0o600 });
    const log = memoryLogger();
    assertEquals(await ensureBootstrapToken(short, log), "CompanyAdmin2026!");
    assertEquals(log.lines.length, 1);
    assertMatch(log.lines[0]!, /bootstrap admin token is short/);
    assertMatch(log.lines[0]!, /characters"?[=:]"?17/);
    const quiet = memoryLogger();
    const generated = `${dir}/generated.token`;
    await ensureBootstrapToken(generated, nullLogger);
    await ensureBootstrapToken(generated, quiet);
    assertEquals(quiet.lines.filter((l) => /short/.test(l)), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
