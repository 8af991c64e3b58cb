/**
 * The modules a program loads at run time, from `deno info --json`: the closure over code
 * imports (type-only imports are erased and load nothing), optionally following dynamic
 * imports, plus the worker modules each loaded module starts with `new Worker(new URL(...))`.
 * @module
 */

const ROOT = new URL("../", import.meta.url);

interface _InfoDep {
  code?: { specifier: string };
  isDynamic?: boolean;
}
interface _Info {
  roots: string[];
  modules: { specifier: string; dependencies?: _InfoDep[] }[];
}

/** A module specifier relative to the repository (`cmd/skein.ts`), or as is (`npm:zod@4`). */
export function relative(specifier: string): string {
  return specifier.startsWith(ROOT.href) ? specifier.slice(ROOT.href.length) : specifier;
}

async function _info(entry: string): Promise<_Info> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`deno info ${entry}: ${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/** The worker modules a source file starts (`new Worker(new URL("./x.ts", import.meta.url))`). */
export function workerModules(source: string, fileUrl: string): string[] {
  // A module that starts workers may build the entry's URL first and pass it on: every module
  // URL it builds from import.meta.url counts as a worker entry.
  if (!source.includes("new Worker(")) return [];
  return [
    ...source.matchAll(/new URL\(\s*["']([^"']+\.ts)["']\s*,\s*import\.meta\.url/g),
  ]
    .map((m) => new URL(m[1]!, fileUrl).href);
}

/** The calls to `import()` in a source file whose argument is not a string literal. */
export function computedImports(source: string): string[] {
  return [...source.matchAll(/\bimport\(\s*([^"'`\s)][^)]*)\)/g)].map((m) => m[0]);
}

/** What {@linkcode runtimeGraph} found. */
export interface RuntimeGraph {
  /** Every module loaded, relative to the repository where local. */
  modules: Set<string>;
  /** The worker entry modules started from the graph (relative). */
  workers: Set<string>;
  /** `import()` calls with a computed argument, by module (a compiler cannot see them). */
  computed: string[];
}

/**
 * The run-time module graph of `entries` (paths relative to the repository). With
 * `dynamic: true` the literal `import("...")`s are followed too; worker modules are listed
 * apart and not followed (each worker's graph is its own isolate's). The dynamic imports of the
 * modules in `lazy` are never followed: they load on first use of a feature (the HTTP/2 code),
 * which a test checks apart.
 */
export async function runtimeGraph(
  entries: string[],
  opts: { dynamic: boolean; lazy?: readonly string[] },
): Promise<RuntimeGraph> {
  const modules = new Set<string>();
  const workers = new Set<string>();
  const computed: string[] = [];
  for (const entry of entries) {
    const info = await _info(entry);
    const byUrl = new Map(info.modules.map((m) => [m.specifier, m]));
    const stack = [...info.roots];
    while (stack.length > 0) {
      const s = stack.pop()!;
      if (modules.has(relative(s))) continue;
      modules.add(relative(s));
      const followDynamic = opts.dynamic && !(opts.lazy ?? []).includes(relative(s));
      for (const d of byUrl.get(s)?.dependencies ?? []) {
        if (d.code && (followDynamic || !d.isDynamic)) stack.push(d.code.specifier);
      }
      if (s.startsWith(ROOT.href) && s.endsWith(".ts")) {
        const src = await Deno.readTextFile(new URL(s));
        for (const w of workerModules(src, s)) workers.add(relative(w));
        for (const c of computedImports(src)) computed.push(`${relative(s)}: ${c}`);
      }
    }
  }
  return { modules, workers, computed };
}
