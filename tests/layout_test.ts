/**
 * The layout rules a newcomer relies on, checked over the production folders: imports point
 * down (cmd → control/mesh → config/common) and never into tests/ or bench/, control and mesh
 * never import each other, no two files or folders import each other in a circle, and no
 * production file grows past the size where it wants splitting.
 * @module
 */
import { assertEquals } from "./assert.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const PRODUCTION = ["cmd", "control", "mesh", "config", "common"];
/** Lines a production module may have before it must be split (issue 17 says ~600). */
const MAX_LINES = 650;
/** Rank of a top-level folder: an import may only go to the same or a higher rank. */
const RANK: Record<string, number> = { cmd: 0, control: 1, mesh: 1, config: 2, common: 3 };
const IMPORT =
  /(?:import|export)\s[^"';]*?from\s+["'](\.[^"']+)["']|import\(\s*["'](\.[^"']+)["']\s*\)/g;

function _files(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(`${ROOT}${dir}`)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(..._files(p));
    else if (e.name.endsWith(".ts") && !e.name.endsWith("_test.ts")) out.push(p);
  }
  return out;
}

function _normalize(path: string): string {
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "..") out.pop();
    else if (part !== "." && part !== "") out.push(part);
  }
  return out.join("/");
}

function _dir(path: string): string {
  return path.slice(0, path.lastIndexOf("/"));
}

/** Every production file and the files it imports (relative imports only). */
function _graph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const f of PRODUCTION.flatMap(_files)) {
    const src = Deno.readTextFileSync(`${ROOT}${f}`);
    const deps: string[] = [];
    for (const m of src.matchAll(IMPORT)) deps.push(_normalize(`${_dir(f)}/${m[1] ?? m[2]}`));
    g.set(f, deps);
  }
  return g;
}

/** The strongly connected components with more than one member (Tarjan). */
function _cycles(g: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    on.add(v);
    for (const w of g.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) out.push(comp.sort());
    }
  };
  for (const v of g.keys()) if (!index.has(v)) visit(v);
  return out;
}

Deno.test("production imports point down, never into tests/ or bench/, never control <-> mesh", () => {
  const wrong: string[] = [];
  for (const [f, deps] of _graph()) {
    const from = f.split("/")[0]!;
    for (const d of deps) {
      const to = d.split("/")[0]!;
      if (d === "deno.json") continue; // the version string, read at build time
      if (!(to in RANK)) wrong.push(`${f} -> ${d} (outside the production folders)`);
      else if (RANK[to]! < RANK[from]!) wrong.push(`${f} -> ${d} (upward)`);
      else if (from !== to && RANK[to] === RANK[from]) wrong.push(`${f} -> ${d} (sideways)`);
    }
  }
  assertEquals(wrong, []);
});

Deno.test("no production files and no production folders import each other in a circle", () => {
  const g = _graph();
  assertEquals(_cycles(g), [], "file cycles");
  const folders = new Map<string, string[]>();
  for (const [f, deps] of g) {
    const list = folders.get(_dir(f)) ?? [];
    for (const d of deps) if (_dir(d) !== _dir(f)) list.push(_dir(d));
    folders.set(_dir(f), list);
  }
  assertEquals(_cycles(folders), [], "folder cycles");
});

Deno.test("the cycle finder finds a circle of three and ignores a chain", () => {
  const g = new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]], ["d", ["a"]]]);
  assertEquals(_cycles(g), [["a", "b", "c"]]);
  assertEquals(_cycles(new Map([["a", ["b"]], ["b", ["c"]]])), []);
});

Deno.test(`no production module is longer than ${MAX_LINES} lines`, () => {
  const long = PRODUCTION.flatMap(_files)
    .map((f) => ({ f, n: Deno.readTextFileSync(`${ROOT}${f}`).split("\n").length }))
    .filter((x) => x.n > MAX_LINES)
    .map((x) => `${x.f}: ${x.n} lines`);
  assertEquals(long, []);
});
