/**
 * `skein ctl get|apply|delete|diff|history|rollback`: routing and policy resources.
 * @module
 */
import { parseAllDocuments, stringify as toYaml } from "yaml";
import {
  ConfigError,
  parseResourceText,
  readConfigFile,
  type Resource,
  RESOURCE_KINDS,
  resourceName,
  unenforcedResourceParts,
} from "../../config/mod.ts";
import { UsageError } from "../cli/args.ts";
import { formatTable, lineDiff } from "./output.ts";
import { routeVersionIssues } from "./route_versions.ts";
import { CTL_APPLY_BATCH, FILE_FLAG } from "./context.ts";
import { arity, CtlError, enc, resourceKind, type Verb } from "./context.ts";

interface _Doc {
  kind: string;
  name: string;
  raw: Record<string, unknown>;
  /** The validated resource. */
  resource: Resource;
}

/** Validates a resource file with the config loader and returns the documents as written. */
async function _readResources(path: string): Promise<_Doc[]> {
  const text = await readConfigFile(path);
  const valid = parseResourceText(text, path);
  const raw = parseAllDocuments(text)
    .map((d) => (Array.isArray(d) ? null : d.toJS({ maxAliasCount: 100 })))
    .filter((v) => v !== null && v !== undefined) as Record<string, unknown>[];
  if (raw.length !== valid.length) {
    throw new CtlError(
      `${path}: found ${raw.length} documents but ${valid.length} valid resources`,
    );
  }
  return valid.map((r, i) => ({ kind: r.kind, name: resourceName(r), raw: raw[i]!, resource: r }));
}

function _canon(v: unknown): string {
  return JSON.stringify(
    v,
    (_k, x) =>
      x && typeof x === "object" && !Array.isArray(x)
        ? Object.fromEntries(
          Object.keys(x).sort().map((k) => [k, (x as Record<string, unknown>)[k]]),
        )
        : x,
  );
}

/** `skein ctl get`. */
export const getVerb: Verb = {
  usage: "skein ctl get KIND [NAME]",
  summary: "List resources of a kind, or print one resource as YAML (`-o json` for metadata).\n" +
    `Kinds: ${RESOURCE_KINDS.join(", ")}.`,
  flags: [],
  examples: ["skein ctl get Route", "skein ctl get Policy ledger -o json"],
  checkArgs(args) {
    if (args.length === 0) {
      throw new UsageError(`get needs a KIND, one of: ${RESOURCE_KINDS.join(", ")}`);
    }
  },
  async run(ctx, args) {
    arity(args, 1, 2, this.usage);
    const kind = resourceKind(args[0]!);
    if (args.length === 1) {
      const r = await ctx.call("GET", ctx.query(`/v1/resources?kind=${enc(kind)}`));
      const list = (r.json.resources ?? []) as Record<string, unknown>[];
      ctx.emit(
        list,
        () =>
          formatTable(
            ["KIND", "NAME", "REVISION"],
            list.map((x) => [String(x.kind), String(x.name), String(x.revision)]),
          ),
      );
      return 0;
    }
    const r = await ctx.call("GET", ctx.query(`/v1/resources/${enc(kind)}/${enc(args[1]!)}`));
    if (ctx.output === "table") ctx.out(toYaml(r.json.resource));
    else ctx.emit(r.json, () => "");
    return 0;
  },
};

/** `skein ctl apply`. */
export const applyVerb: Verb = {
  usage: "skein ctl apply -f FILE",
  summary: "Validate the resources in FILE, then write them; prints created/updated/unchanged.",
  flags: [FILE_FLAG],
  async run(ctx, args) {
    arity(args, 0, 0, this.usage);
    const file = ctx.flags.get("file");
    if (!file) throw new UsageError(`apply needs -f FILE; usage: ${this.usage}`);
    const docs = await _readResources(file);
    const unknown = await routeVersionIssues(
      file,
      await readConfigFile(file),
      docs.map((d) => d.resource),
      async (svc) => {
        const r = await ctx.call("GET", `/v1/services/${enc(svc)}`, undefined, {
          allow404: true,
        });
        const list = (r.json.instances ?? []) as { version?: string }[];
        return new Set(list.map((i) => i.version ?? ""));
      },
    );
    if (unknown.length > 0) throw new ConfigError(unknown);
    const items: Record<string, unknown>[] = [];
    for (let i = 0; i < docs.length; i += CTL_APPLY_BATCH) {
      const batch = docs.slice(i, i + CTL_APPLY_BATCH).map((d) => d.raw);
      const r = await ctx.call("PUT", "/v1/resources", batch);
      items.push(...((r.json.items ?? []) as Record<string, unknown>[]));
    }
    ctx.emit(
      items,
      () =>
        items.map((x) => `${x.kind}/${x.name} ${x.outcome} (revision ${x.revision})`).join("\n"),
    );
    for (const part of unenforcedResourceParts(docs.map((d) => d.resource))) {
      ctx.io.stderr(`note: ${part} is stored, but this version's proxies do not enforce it\n`);
    }
    return 0;
  },
};

/** `skein ctl delete`. */
export const deleteVerb: Verb = {
  usage: "skein ctl delete KIND NAME",
  summary: "Delete a resource (its history is kept for rollback).",
  flags: [],
  async run(ctx, args) {
    arity(args, 2, 2, this.usage);
    const kind = resourceKind(args[0]!);
    const r = await ctx.call("DELETE", `/v1/resources/${enc(kind)}/${enc(args[1]!)}`);
    ctx.emit(r.json, () => `${kind}/${args[1]} deleted (revision ${r.json.revision})`);
    return 0;
  },
};

/** `skein ctl diff`. */
export const diffVerb: Verb = {
  usage: "skein ctl diff -f FILE",
  summary: "Show how the resources in FILE differ from what the cluster has.",
  flags: [FILE_FLAG],
  async run(ctx, args) {
    arity(args, 0, 0, this.usage);
    const file = ctx.flags.get("file");
    if (!file) throw new UsageError(`diff needs -f FILE; usage: ${this.usage}`);
    const docs = await _readResources(file);
    const report: { kind: string; name: string; change: string; diff: string }[] = [];
    for (const d of docs) {
      const r = await ctx.call(
        "GET",
        ctx.query(`/v1/resources/${enc(d.kind)}/${enc(d.name)}`),
        undefined,
        { allow404: true },
      );
      const cur = r.status === 404 ? null : r.json.resource;
      const change = cur === null
        ? "create"
        : _canon(cur) === _canon(d.raw)
        ? "unchanged"
        : "update";
      const diff = change === "unchanged"
        ? ""
        : lineDiff(cur === null ? "" : toYaml(cur).trimEnd(), toYaml(d.raw).trimEnd());
      report.push({ kind: d.kind, name: d.name, change, diff });
    }
    ctx.emit(
      report,
      () =>
        report.map((x) =>
          `${x.kind}/${x.name}: ${x.change}${x.diff ? "\n" + x.diff.trimEnd() : ""}`
        ).join("\n"),
    );
    return 0;
  },
};

/** `skein ctl history`. */
export const historyVerb: Verb = {
  usage: "skein ctl history KIND NAME",
  summary: "Kept revisions of a resource, oldest first.",
  flags: [],
  async run(ctx, args) {
    arity(args, 2, 2, this.usage);
    const kind = resourceKind(args[0]!);
    const r = await ctx.call(
      "GET",
      ctx.query(`/v1/resources/${enc(kind)}/${enc(args[1]!)}/history`),
    );
    const revs = (r.json.revisions ?? []) as {
      revision: number;
      index: number;
      resource: unknown;
    }[];
    const last = revs.at(-1)?.revision;
    ctx.emit(r.json, () =>
      formatTable(
        ["REVISION", "RAFT_INDEX", "STATE"],
        revs.map((x) => [
          String(x.revision),
          String(x.index),
          x.resource === null ? "deleted" : x.revision === last ? "current" : "",
        ]),
      ));
    return 0;
  },
};

/** `skein ctl rollback`. */
export const rollbackVerb: Verb = {
  usage: "skein ctl rollback KIND NAME REV",
  summary: "Make revision REV the current content again (as a new revision).",
  flags: [],
  async run(ctx, args) {
    arity(args, 3, 3, this.usage);
    const kind = resourceKind(args[0]!);
    const rev = Number(args[2]);
    if (!/^\d+$/.test(args[2]!) || rev < 1) {
      throw new UsageError(
        `REV must be a revision number like 3, got ${JSON.stringify(args[2])}`,
      );
    }
    const r = await ctx.call("POST", `/v1/resources/${enc(kind)}/${enc(args[1]!)}/rollback`, {
      revision: rev,
    });
    ctx.emit(
      r.json,
      () =>
        r.json.outcome === "unchanged"
          ? `${kind}/${args[1]} already has the content of revision ${rev}`
          : `${kind}/${args[1]} rolled back to revision ${rev} (now revision ${r.json.revision})`,
    );
    return 0;
  },
};
