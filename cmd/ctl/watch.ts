/**
 * `skein ctl watch [KIND]`: follows the catalog with blocking queries and prints one line per
 * change (instance added, removed or changed; resource created, updated or deleted).
 * @module
 */
import { stringify as toYaml } from "yaml";
import { UsageError } from "../cli/args.ts";
import { CTL_REQUEST_TIMEOUT_MS, resourceKind, type Verb } from "./context.ts";

/** How long each blocking query waits on the server, in seconds. */
export const WATCH_WAIT_S = 30;

/** The parts of a catalog the watch compares. */
export interface WatchedCatalog {
  index: number;
  services: Record<string, Record<string, unknown>[]>;
  resources: Record<string, unknown>[];
}

/** One change between two catalogs. */
export interface WatchEvent {
  index: number;
  what: "instance" | "resource";
  change: "added" | "removed" | "changed";
  name: string;
  detail: string;
}

function _resourceKey(r: Record<string, unknown>): string {
  return `${r.kind}/${r.service ?? r.name ?? "?"}`;
}

function _instanceDetail(i: Record<string, unknown>): string {
  return `${i.address}:${i.port}${i.version ? ` ${i.version}` : ""} ${i.health} weight ${i.weight}`;
}

/**
 * The changes from `prev` (null: nothing seen yet, so everything is "added") to `next`;
 * with `kind`, only resources of that kind.
 */
export function catalogChanges(
  prev: WatchedCatalog | null,
  next: WatchedCatalog,
  kind?: string,
): WatchEvent[] {
  const out: WatchEvent[] = [];
  const ev = (what: WatchEvent["what"], change: WatchEvent["change"], name: string, d: string) =>
    out.push({ index: next.index, what, change, name, detail: d });
  if (kind === undefined) {
    const flat = (c: WatchedCatalog | null) =>
      new Map(
        Object.entries(c?.services ?? {}).flatMap(([svc, list]) =>
          list.map((i) => [`${svc}/${i.id}`, i] as const)
        ),
      );
    const a = flat(prev);
    const b = flat(next);
    for (const [k, i] of b) {
      const old = a.get(k);
      if (!old) ev("instance", "added", k, _instanceDetail(i));
      else if (JSON.stringify(old) !== JSON.stringify(i)) {
        ev("instance", "changed", k, _instanceDetail(i));
      }
    }
    for (const [k, i] of a) if (!b.has(k)) ev("instance", "removed", k, _instanceDetail(i));
  }
  const byKey = (c: WatchedCatalog | null) =>
    new Map(
      (c?.resources ?? []).filter((r) => kind === undefined || r.kind === kind).map((r) =>
        [_resourceKey(r), r] as const
      ),
    );
  const ra = byKey(prev);
  const rb = byKey(next);
  for (const [k, r] of rb) {
    const old = ra.get(k);
    if (!old) ev("resource", "added", k, "");
    else if (JSON.stringify(old) !== JSON.stringify(r)) ev("resource", "changed", k, "");
  }
  for (const k of ra.keys()) if (!rb.has(k)) ev("resource", "removed", k, "");
  return out;
}

/** `skein ctl watch`. */
export const watchVerb: Verb = {
  usage: "skein ctl watch [KIND] [--count N]",
  summary: "Follow the catalog and print one line per change: instances added, removed or " +
    "changed (health, weight), and resources added, changed or removed (only KIND's with a " +
    "KIND). The first lines list what exists. Runs until Ctrl-C or --count changes.",
  flags: [{ name: "count", value: true, help: "exit after this many changes" }],
  examples: [
    "skein ctl watch            # instances and resources",
    "skein ctl watch Route      # only Route resources",
    "skein ctl watch -o json    # one JSON object per change and line",
  ],
  async run(ctx, args) {
    if (args.length > 1) throw new UsageError(`unexpected argument(s); usage: ${this.usage}`);
    const kind = args[0] === undefined ? undefined : resourceKind(args[0]);
    const rawCount = ctx.flags.get("count");
    if (rawCount !== undefined && !/^[1-9]\d{0,8}$/.test(rawCount)) {
      throw new UsageError(`--count expects a positive whole number, got ${rawCount}`);
    }
    let left = rawCount === undefined ? Infinity : Number(rawCount);
    let prev: WatchedCatalog | null = null;
    while (left > 0) {
      const q = prev === null ? "" : `?index=${prev.index}&wait=${WATCH_WAIT_S}s`;
      const r = await ctx.call("GET", `/v1/catalog${q}`, undefined, {
        timeoutMs: WATCH_WAIT_S * 1000 + CTL_REQUEST_TIMEOUT_MS,
      });
      const next = r.json as unknown as WatchedCatalog;
      for (const e of catalogChanges(prev, next, kind)) {
        if (left <= 0) break;
        left--;
        if (ctx.output === "table") {
          ctx.out(
            `${new Date().toISOString()} index ${e.index} ${e.what} ${e.name} ${e.change}${
              e.detail ? ` (${e.detail})` : ""
            }`,
          );
        } else if (ctx.output === "yaml") ctx.out(`---\n${toYaml(e)}`);
        else ctx.out(JSON.stringify(e)); // one object per line, so a script can read a stream
      }
      prev = next;
    }
    return 0;
  },
};
