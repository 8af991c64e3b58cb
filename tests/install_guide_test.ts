/**
 * Every YAML block of docs/install.md is a file `skein check-config` accepts, so a user who
 * copies one as written gets no error; a fragment (a key to add to control.yaml) is checked
 * inside the guide's first control.yaml.
 * @module
 */
import { parse, stringify } from "yaml";
import { assert, assertEquals } from "./assert.ts";
import { type ConfigKind, detectKind, runCheckConfig } from "../cmd/check_config.ts";

const GUIDE = new URL("../docs/install.md", import.meta.url);

/** The ```yaml blocks of a markdown text, with list indentation removed. */
function yamlBlocks(md: string): string[] {
  const out: string[] = [];
  const re = /^( *)```yaml\n([\s\S]*?)^\1```$/gm;
  for (const m of md.matchAll(re)) {
    const indent = m[1]!.length;
    out.push(m[2]!.split("\n").map((l) => l.slice(Math.min(indent, l.search(/\S|$/)))).join("\n"));
  }
  return out;
}

Deno.test("every YAML block of docs/install.md passes check-config as written", async () => {
  const blocks = yamlBlocks(await Deno.readTextFile(GUIDE));
  const dir = await Deno.makeTempDir({ prefix: "skein-install-guide-" });
  try {
    const kinds: (ConfigKind | "fragment")[] = [];
    const firstControl = blocks.find((b) => detectKind("x.yaml", b) === "control");
    assert(firstControl, "the guide shows a control.yaml");
    for (const [i, block] of blocks.entries()) {
      let text = block;
      let kind: ConfigKind | "fragment" | null = detectKind("x.yaml", block);
      if (kind === null) {
        // A fragment: the keys the guide tells the user to add to control.yaml.
        text = stringify({ ...parse(firstControl), ...parse(block) });
        kind = "fragment";
      }
      kinds.push(kind);
      const file = `${dir}/block-${i}.yaml`;
      await Deno.writeTextFile(file, text);
      let out = "";
      const code = await runCheckConfig(file, kind === "fragment" ? "control" : kind, {
        stdout: (t) => (out += t),
        stderr: (t) => (out += t),
        env: {},
      });
      assertEquals(code, 0, `block ${i} of docs/install.md:\n${block}\n${out}`);
    }
    // The 3-node guide and its one-machine variant: two control files, two proxy files, the
    // Authorization of section 5 and the `ca:` keys of section 6.
    assertEquals(kinds.filter((k) => k === "control").length, 2, kinds.join());
    assertEquals(kinds.filter((k) => k === "proxy").length, 2, kinds.join());
    assertEquals(kinds.filter((k) => k === "resources").length, 1, kinds.join());
    assertEquals(kinds.filter((k) => k === "fragment").length, 1, kinds.join());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
