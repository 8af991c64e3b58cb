/** `skein ctl` help: kinds listed, the token-file/ca-file usage, and no line over 100 columns. */
import { assert, assertEquals } from "../tests/assert.ts";
import { RESOURCE_KINDS } from "../config/mod.ts";
import { runCtl } from "./ctl.ts";

async function ctl(...args: string[]) {
  let out = "";
  let err = "";
  const code = await runCtl(args, {
    stdout: (t) => (out += t),
    stderr: (t) => (err += t),
    env: {},
    fetch: () => Promise.reject(new Error("no request expected")),
  });
  return { code, out, err };
}

function assertNarrow(text: string, what: string): void {
  for (const line of text.split("\n")) {
    assert(line.length <= 100, `${what}: ${line.length} columns: ${line}`);
  }
}

Deno.test("ctl get without a kind, and get --help, list the kinds", async () => {
  const none = await ctl("get");
  assertEquals(none.code, 2);
  for (const k of RESOURCE_KINDS) assert(none.err.includes(k), none.err);
  const help = await ctl("get", "--help");
  assertEquals(help.code, 0);
  for (const k of RESOURCE_KINDS) assert(help.out.includes(k), help.out);
});

Deno.test("ctl --help shows --token-file and --ca-file in its usage, and fits 100 columns", async () => {
  const h = await ctl("--help");
  assertEquals(h.code, 0);
  const usage = h.out.split("\n")[0]!;
  assert(usage.includes("--token-file") && usage.includes("--ca-file"), usage);
  assert(!usage.includes("--token T"), usage);
  assertNarrow(h.out, "ctl --help");
  const verbs = h.out.split("\n").filter((l) => /^ {2}[a-z]/.test(l)).map((l) =>
    l.trim().split(" ")[0]!
  );
  assert(verbs.length >= 14, h.out);
  for (const v of ["check", "watch", "instances"]) assert(verbs.includes(v), h.out);
  for (const v of verbs) {
    const vh = await ctl(v, "--help");
    assertEquals(vh.code, 0, `${v}: ${vh.err}`);
    assertNarrow(vh.out, `ctl ${v} --help`);
    // Man-page style: every verb's page has the same sections.
    for (const section of ["DESCRIPTION", "OPTIONS", "EXIT STATUS"]) {
      assert(vh.out.includes(`\n${section}\n`), `${v}: no ${section}`);
    }
  }
});
