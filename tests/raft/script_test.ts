/**
 * Runs every `testdata/*.txt` interaction script and compares transcripts.
 * `REWRITE=1 deno test --allow-all tests/raft/script_test.ts` regenerates expectations.
 * @module
 */
import { InteractionEnv, parseCommand } from "./interaction.ts";

const DIR = new URL("./testdata/", import.meta.url);
const REWRITE = Deno.env.get("REWRITE") === "1";

type _Case = { line: number; cmd: string; expected: string };

/** Parses `command\n----\noutput\n\n` blocks; `#` lines outside outputs are comments. */
function parseScript(text: string): { cases: _Case[]; comments: Map<number, string[]> } {
  const lines = text.split("\n");
  const cases: _Case[] = [];
  const comments = new Map<number, string[]>();
  let pending: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.trim() === "") continue;
    if (l.startsWith("#")) {
      pending.push(l);
      continue;
    }
    if (lines[i + 1] !== "----") throw new Error(`line ${i + 2}: expected ---- after command`);
    const out: string[] = [];
    let j = i + 2;
    while (j < lines.length && lines[j] !== "") out.push(lines[j++]!);
    comments.set(cases.length, pending);
    pending = [];
    cases.push({ line: i + 1, cmd: l, expected: out.join("\n") });
    i = j;
  }
  // Comments after the last command are kept under the index one past the end.
  comments.set(cases.length, pending);
  return { cases, comments };
}

for (
  const f of [...Deno.readDirSync(DIR)].map((e) => e.name).filter((n) => n.endsWith(".txt")).sort()
) {
  Deno.test(`raft script ${f} produces its expected transcript`, () => {
    const path = new URL(f, DIR);
    const { cases, comments } = parseScript(Deno.readTextFileSync(path));
    const env = new InteractionEnv();
    const rewritten: string[] = [];
    for (let k = 0; k < cases.length; k++) {
      const c = cases[k]!;
      const got = env.run(parseCommand(c.cmd));
      if (REWRITE) {
        rewritten.push(...comments.get(k)!, c.cmd, "----", got, "");
      } else if (got !== c.expected) {
        throw new Error(
          `${f}:${c.line}: ${c.cmd}\n--- expected\n${c.expected}\n--- got\n${got}`,
        );
      }
    }
    if (REWRITE) {
      rewritten.push(...comments.get(cases.length)!);
      Deno.writeTextFileSync(path, rewritten.join("\n").replace(/\n*$/, "\n"));
    }
  });
}
