/**
 * Resident (RSS) and proportional (PSS) memory of a process from `/proc/<pid>/smaps_rollup`.
 * PSS divides shared pages (the deno binary, shared libraries) among the processes that map
 * them, so it is what one more process of the same binary really costs.
 * @module
 */

/** One memory reading, KiB. */
export interface MemoryKiB {
  rss: number;
  pss: number;
}

/** Parses the text of `/proc/<pid>/smaps_rollup`; null when it carries no Rss/Pss lines. */
export function parseSmapsRollup(text: string): MemoryKiB | null {
  const rss = /^Rss:\s+(\d+) kB/m.exec(text)?.[1];
  const pss = /^Pss:\s+(\d+) kB/m.exec(text)?.[1];
  if (rss === undefined || pss === undefined) return null;
  return { rss: Number(rss), pss: Number(pss) };
}

/** Reads a process's RSS and PSS; zeros when it is gone or unreadable. */
export async function processMemory(pid: number): Promise<MemoryKiB> {
  try {
    return parseSmapsRollup(await Deno.readTextFile(`/proc/${pid}/smaps_rollup`)) ??
      { rss: 0, pss: 0 };
  } catch {
    return { rss: 0, pss: 0 };
  }
}

/** Formats KiB as MB with one decimal (MiB, as `ps` and `top` count). */
export function mb(kib: number): string {
  return `${(kib / 1024).toFixed(1)}M`;
}

/** Resident memory by kind of mapping, KiB: what a process's RSS is made of. */
export interface MappingSplit {
  /** Anonymous mappings: V8's heaps, thread arenas and the like. */
  anon: number;
  /** Pages of the `deno` (or compiled `skein`) executable itself. */
  binary: number;
  /** The brk heap of malloc. */
  malloc: number;
  /** Everything else: shared libraries, stacks, vdso. */
  other: number;
}

/**
 * Sums the `Rss:` of each mapping in the text of `/proc/<pid>/smaps` by kind; `binary` is the
 * executable whose path ends in `exe` (such as `/deno` or `/skein`).
 */
export function smapsByMapping(text: string, exe: string): MappingSplit {
  const out: MappingSplit = { anon: 0, binary: 0, malloc: 0, other: 0 };
  let kind: keyof MappingSplit = "other";
  for (const line of text.split("\n")) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const name = head[1]!;
      kind = name === ""
        ? "anon"
        : name === "[heap]"
        ? "malloc"
        : name.endsWith(exe)
        ? "binary"
        : "other";
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) out[kind] += Number(rss[1]);
  }
  return out;
}
