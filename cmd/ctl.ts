/**
 * `skein ctl`: the operator CLI against the control API (SPEC sections 1, 2 and 4).
 *
 * Exit codes: 0 ok, 1 runtime failure (control unreachable, request refused), 2 bad usage or
 * an invalid resource file.
 * @module
 */
import { parseAllDocuments, stringify as toYaml } from "yaml";
import {
  ConfigError,
  didYouMean,
  parseResourceText,
  readConfigFile,
  type Resource,
  RESOURCE_KINDS,
  resourceName,
  unenforcedResourceParts,
} from "../config/mod.ts";
import { type FlagSpec, formatHelp, parseArgs, type ParsedArgs, UsageError } from "./args.ts";
import type { CommandIo } from "./io.ts";
import { formatTable, lineDiff } from "./ctl_output.ts";
import { routeVersionIssues } from "./ctl_route_versions.ts";
import { ControlHttp, readCaBundle } from "../common/control_https.ts";

/** Control API used when neither `--control` nor `SKEIN_CONTROL` is given. */
export const DEFAULT_CONTROL_URL = "https://127.0.0.1:7400";
/** CA bundle used to trust an https control API when neither `--ca-file` nor `SKEIN_CA_FILE` is given. */
export const DEFAULT_CA_FILE = "/etc/skein/ca.pem";
/** Timeout of one API request made by ctl. */
export const CTL_REQUEST_TIMEOUT_MS = 10_000;
/** Timeout of each per-node health probe of `ctl status`. */
export const CTL_STATUS_PROBE_TIMEOUT_MS = 3_000;
/** Resources sent per `PUT /v1/resources` (the API's per-request limit). */
export const CTL_APPLY_BATCH = 100;

/** What `runCtl` needs from the process; `fetch` is injectable for tests. */
export interface CtlIo extends Pick<CommandIo, "stdout" | "stderr"> {
  /** The environment (`SKEIN_CONTROL`, `SKEIN_TOKEN`, `SKEIN_CA_FILE`). */
  env: Record<string, string | undefined>;
  /** HTTP client. @default globalThis.fetch */
  fetch?: (req: Request) => Promise<Response>;
}

type Output = "table" | "json" | "yaml";

/** Hosts a plain-http control URL may name: the token then never leaves the machine. */
const _LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

const COMMON_FLAGS: FlagSpec[] = [
  {
    name: "control",
    value: true,
    help: "control API URL (default $SKEIN_CONTROL or " + DEFAULT_CONTROL_URL + ")",
  },
  {
    name: "token",
    value: true,
    help: "bearer token (default $SKEIN_TOKEN); other users can read a flag in the process list",
  },
  {
    name: "token-file",
    value: true,
    help: "file holding the bearer token (default $SKEIN_TOKEN_FILE)",
  },
  {
    name: "ca-file",
    value: true,
    help: "CA bundle that signed the API's certificate (default $SKEIN_CA_FILE or " +
      DEFAULT_CA_FILE + ")",
  },
  {
    name: "output",
    short: "o",
    value: true,
    help: "table | json | yaml",
    choices: ["table", "json", "yaml"],
  },
  {
    name: "stale",
    value: false,
    help: "read from the contacted node without a linearizable barrier",
  },
];
const FILE_FLAG: FlagSpec = { name: "file", short: "f", value: true, help: "resource YAML file" };

interface Verb {
  usage: string;
  summary: string;
  flags: FlagSpec[];
  run(ctx: _Ctx, args: string[]): Promise<number>;
}

/** A CA root as the rotation routes show it (no key). */
interface _CaRoot {
  id: string;
  generation: number;
  notAfter: number;
}

/** Thrown for runtime failures; printed as `error: …` with exit code 1. */
class CtlError extends Error {}

class _Ctx {
  constructor(
    readonly io: CtlIo,
    readonly base: string,
    readonly token: string | undefined,
    readonly output: Output,
    readonly flags: Map<string, string>,
  ) {}

  out(text: string): void {
    this.io.stdout(text.endsWith("\n") ? text : text + "\n");
  }

  /** Prints data as json/yaml, or calls `table` for the table format. */
  emit(data: unknown, table: () => string): void {
    if (this.output === "json") this.out(JSON.stringify(data, null, 2));
    else if (this.output === "yaml") this.out(toYaml(data));
    else this.out(table());
  }

  query(path: string): string {
    if (!this.flags.has("stale")) return path;
    return path + (path.includes("?") ? "&" : "?") + "stale=true";
  }

  /** Calls the API; returns status and JSON body, or throws CtlError when unreachable. */
  async call(
    method: string,
    path: string,
    body?: unknown,
    opts: { base?: string; timeoutMs?: number; allow404?: boolean } = {},
  ): Promise<{ status: number; json: Record<string, unknown> }> {
    const base = (opts.base ?? this.base).replace(/\/+$/, "");
    const headers = new Headers({ accept: "application/json" });
    if (this.token) headers.set("authorization", `Bearer ${this.token}`);
    if (body !== undefined) headers.set("content-type", "application/json");
    const doFetch = this.io.fetch ?? ((r: Request) => fetch(r));
    let res: Response;
    let text: string;
    try {
      res = await doFetch(
        new Request(base + path, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(opts.timeoutMs ?? CTL_REQUEST_TIMEOUT_MS),
        }),
      );
      text = await res.text();
    } catch (e) {
      const why = e instanceof DOMException && e.name === "TimeoutError"
        ? `no answer within ${opts.timeoutMs ?? CTL_REQUEST_TIMEOUT_MS} ms`
        : (e as Error).message;
      throw new CtlError(`cannot reach the control API at ${base}: ${why}`);
    }
    let json: Record<string, unknown> = {};
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      throw new CtlError(`${method} ${base}${path}: HTTP ${res.status} with a non-JSON body`);
    }
    if (res.ok || (opts.allow404 && res.status === 404)) return { status: res.status, json };
    const err = (json.error ?? {}) as {
      code?: string;
      message?: string;
      details?: { issues?: { path: string; message: string }[] };
    };
    let msg = `${method} ${path}: ${res.status} ${err.code ?? "error"}: ${err.message ?? text}`;
    for (const i of err.details?.issues?.slice(1) ?? []) {
      msg += `\n  ${i.path || "(body)"}: ${i.message}`;
    }
    throw new CtlError(msg);
  }
}

function _kind(raw: string): string {
  const k = RESOURCE_KINDS.find((x) => x.toLowerCase() === raw.toLowerCase());
  if (k) return k;
  const hint = didYouMean(raw, RESOURCE_KINDS);
  throw new UsageError(
    `unknown resource kind ${JSON.stringify(raw)}${hint ? `; did you mean ${hint}?` : ""} (kinds: ${
      RESOURCE_KINDS.join(", ")
    })`,
  );
}

function _arity(args: string[], min: number, max: number, usage: string): void {
  if (args.length < min || args.length > max) {
    throw new UsageError(
      `${args.length < min ? "missing" : "unexpected"} argument(s); usage: ${usage}`,
    );
  }
}

const _enc = encodeURIComponent;

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

const VERBS: Record<string, Verb> = {
  status: {
    usage: "skein ctl status [NODE]",
    summary: "Health of each control node (or of NODE): role, leader, term, commit index.",
    flags: [],
    async run(ctx, args) {
      _arity(args, 0, 1, this.usage);
      const first = (await ctx.call("GET", "/v1/health")).json as Record<string, unknown>;
      const rows: Record<string, unknown>[] = [{ ...first, api: ctx.base, reachable: true }];
      let members: { node: string; api?: string | null }[] = [];
      try {
        members = ((await ctx.call("GET", "/v1/members")).json.members ?? []) as typeof members;
      } catch {
        // Health alone still answers the question for the contacted node.
      }
      for (const m of members) {
        if (m.node === first.node) continue;
        if (!m.api) {
          rows.push({ node: m.node, reachable: false, error: "no API address known" });
          continue;
        }
        try {
          const h = await ctx.call("GET", "/v1/health", undefined, {
            base: m.api,
            timeoutMs: CTL_STATUS_PROBE_TIMEOUT_MS,
          });
          rows.push({ ...h.json, api: m.api, reachable: true });
        } catch (e) {
          rows.push({ node: m.node, api: m.api, reachable: false, error: (e as Error).message });
        }
      }
      const shown = args[0] ? rows.filter((r) => r.node === args[0]) : rows;
      if (args[0] && shown.length === 0) {
        throw new CtlError(`no control node ${args[0]} in the cluster`);
      }
      ctx.emit(shown, () =>
        formatTable(
          ["NODE", "ROLE", "LEADER", "TERM", "COMMIT", "APPLIED", "API"],
          shown.map((r) => [
            String(r.node),
            r.reachable ? String(r.role) : "unreachable",
            String(r.leader ?? "-"),
            String(r.term ?? "-"),
            String(r.commit_index ?? "-"),
            String(r.applied_index ?? "-"),
            String(r.api ?? "-"),
          ]),
        ));
      return shown.every((r) => r.reachable) ? 0 : 1;
    },
  },
  members: {
    usage: "skein ctl members [list | add NODE=HOST:PORT [--api URL] | remove NODE]",
    summary: "List or change the control cluster's Raft membership.",
    flags: [{ name: "api", value: true, help: "API base URL of the node being added" }],
    async run(ctx, args) {
      const sub = args[0] ?? "list";
      if (sub === "list") {
        _arity(args, 0, 1, this.usage);
        const members = ((await ctx.call("GET", "/v1/members")).json.members ?? []) as Record<
          string,
          unknown
        >[];
        ctx.emit(members, () =>
          formatTable(
            ["NODE", "ADDRESS", "API", "VOTER"],
            members.map((
              m,
            ) => [
              String(m.node),
              String(m.address),
              String(m.api ?? "-"),
              String(m.voter ?? true),
            ]),
          ));
        return 0;
      }
      if (sub === "add") {
        _arity(args, 2, 2, this.usage);
        const spec = args[1]!;
        const eq = spec.indexOf("=");
        if (eq <= 0 || eq === spec.length - 1) {
          throw new UsageError(`members add expects NODE=HOST:PORT, got ${JSON.stringify(spec)}`);
        }
        const body: Record<string, unknown> = {
          node: spec.slice(0, eq),
          address: spec.slice(eq + 1),
        };
        if (ctx.flags.has("api")) body.api = ctx.flags.get("api");
        const r = await ctx.call("POST", "/v1/members", body);
        ctx.emit(r.json, () => `member ${body.node} added (${body.address})`);
        return 0;
      }
      if (sub === "remove") {
        _arity(args, 2, 2, this.usage);
        const r = await ctx.call("DELETE", `/v1/members/${_enc(args[1]!)}`);
        ctx.emit(r.json, () => `member ${args[1]} removed`);
        return 0;
      }
      const hint = didYouMean(sub, ["list", "add", "remove"]);
      throw new UsageError(
        `unknown members subcommand ${JSON.stringify(sub)}${hint ? `; did you mean ${hint}?` : ""}`,
      );
    },
  },
  services: {
    usage: "skein ctl services [NAME] [--healthy] [--zone Z] [--capability C]",
    summary: "Services with instance counts by health, or the instances of service NAME.",
    flags: [
      { name: "healthy", value: false, help: "only instances that can take traffic" },
      { name: "zone", value: true, help: "only instances in this zone" },
      { name: "capability", value: true, help: "only instances with this capability" },
    ],
    async run(ctx, args) {
      _arity(args, 0, 1, this.usage);
      if (args.length === 0) {
        const r = await ctx.call("GET", ctx.query("/v1/services"));
        const list = (r.json.services ?? []) as Record<string, unknown>[];
        ctx.emit(r.json, () =>
          formatTable(
            ["NAME", "PASSING", "WARNING", "CRITICAL"],
            list.map((
              s,
            ) => [String(s.name), String(s.passing), String(s.warning), String(s.critical)]),
          ));
        return 0;
      }
      const q = new URLSearchParams();
      if (ctx.flags.has("healthy")) q.set("healthy", "true");
      for (const f of ["zone", "capability"]) if (ctx.flags.has(f)) q.set(f, ctx.flags.get(f)!);
      const qs = q.size > 0 ? `?${q}` : "";
      const r = await ctx.call("GET", ctx.query(`/v1/services/${_enc(args[0]!)}${qs}`));
      const list = (r.json.instances ?? []) as Record<string, unknown>[];
      ctx.emit(r.json, () =>
        formatTable(
          ["ID", "ADDRESS", "PORT", "NODE", "ZONE", "VERSION", "WEIGHT", "HEALTH"],
          list.map((i) =>
            [
              i.id,
              i.address,
              i.port,
              i.node || "-",
              i.zone || "-",
              i.version || "-",
              i.weight,
              i.health,
            ].map(String)
          ),
        ));
      return 0;
    },
  },
  get: {
    usage: "skein ctl get KIND [NAME]",
    summary: "List resources of a kind, or print one resource as YAML (`-o json` for metadata).",
    flags: [],
    async run(ctx, args) {
      _arity(args, 1, 2, this.usage);
      const kind = _kind(args[0]!);
      if (args.length === 1) {
        const r = await ctx.call("GET", ctx.query(`/v1/resources?kind=${_enc(kind)}`));
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
      const r = await ctx.call("GET", ctx.query(`/v1/resources/${_enc(kind)}/${_enc(args[1]!)}`));
      if (ctx.output === "table") ctx.out(toYaml(r.json.resource));
      else ctx.emit(r.json, () => "");
      return 0;
    },
  },
  apply: {
    usage: "skein ctl apply -f FILE",
    summary: "Validate the resources in FILE, then write them; prints created/updated/unchanged.",
    flags: [FILE_FLAG],
    async run(ctx, args) {
      _arity(args, 0, 0, this.usage);
      const file = ctx.flags.get("file");
      if (!file) throw new UsageError(`apply needs -f FILE; usage: ${this.usage}`);
      const docs = await _readResources(file);
      const unknown = await routeVersionIssues(
        file,
        await readConfigFile(file),
        docs.map((d) => d.resource),
        async (svc) => {
          const r = await ctx.call("GET", `/v1/services/${_enc(svc)}`, undefined, {
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
  },
  delete: {
    usage: "skein ctl delete KIND NAME",
    summary: "Delete a resource (its history is kept for rollback).",
    flags: [],
    async run(ctx, args) {
      _arity(args, 2, 2, this.usage);
      const kind = _kind(args[0]!);
      const r = await ctx.call("DELETE", `/v1/resources/${_enc(kind)}/${_enc(args[1]!)}`);
      ctx.emit(r.json, () => `${kind}/${args[1]} deleted (revision ${r.json.revision})`);
      return 0;
    },
  },
  diff: {
    usage: "skein ctl diff -f FILE",
    summary: "Show how the resources in FILE differ from what the cluster has.",
    flags: [FILE_FLAG],
    async run(ctx, args) {
      _arity(args, 0, 0, this.usage);
      const file = ctx.flags.get("file");
      if (!file) throw new UsageError(`diff needs -f FILE; usage: ${this.usage}`);
      const docs = await _readResources(file);
      const report: { kind: string; name: string; change: string; diff: string }[] = [];
      for (const d of docs) {
        const r = await ctx.call(
          "GET",
          ctx.query(`/v1/resources/${_enc(d.kind)}/${_enc(d.name)}`),
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
  },
  history: {
    usage: "skein ctl history KIND NAME",
    summary: "Kept revisions of a resource, oldest first.",
    flags: [],
    async run(ctx, args) {
      _arity(args, 2, 2, this.usage);
      const kind = _kind(args[0]!);
      const r = await ctx.call(
        "GET",
        ctx.query(`/v1/resources/${_enc(kind)}/${_enc(args[1]!)}/history`),
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
  },
  rollback: {
    usage: "skein ctl rollback KIND NAME REV",
    summary: "Make revision REV the current content again (as a new revision).",
    flags: [],
    async run(ctx, args) {
      _arity(args, 3, 3, this.usage);
      const kind = _kind(args[0]!);
      const rev = Number(args[2]);
      if (!/^\d+$/.test(args[2]!) || rev < 1) {
        throw new UsageError(
          `REV must be a revision number like 3, got ${JSON.stringify(args[2])}`,
        );
      }
      const r = await ctx.call("POST", `/v1/resources/${_enc(kind)}/${_enc(args[1]!)}/rollback`, {
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
  },
  ca: {
    usage:
      "skein ctl ca [roots | rotate [--activate] | activate ROOT_ID | finish | revoke (--service S | --spiffe-id ID) [--reason R]]",
    summary:
      "Show the CA roots; rotate the CA (trust a new root, activate it, finish by dropping the old one); revoke an identity.",
    flags: [
      { name: "activate", value: false, help: "rotate: sign with the new root at once" },
      { name: "service", value: true, help: "revoke: the service whose identity is revoked" },
      { name: "spiffe-id", value: true, help: "revoke: an exact SPIFFE id" },
      { name: "reason", value: true, help: "revoke: a note kept with the revocation" },
    ],
    async run(ctx, args) {
      const sub = args[0] ?? "roots";
      const rootsTable = (ca: { activeRootId?: string; roots?: _CaRoot[] }) =>
        formatTable(
          ["ROOT", "GENERATION", "ACTIVE", "NOT_AFTER"],
          (ca.roots ?? []).map((r) => [
            r.id,
            String(r.generation),
            r.id === ca.activeRootId ? "yes" : "",
            new Date(r.notAfter).toISOString(),
          ]),
        );
      if (sub === "roots") {
        _arity(args, 0, 1, this.usage);
        const r = await ctx.call("GET", ctx.query("/v1/ca/roots"));
        ctx.emit(
          r.json,
          () =>
            `trust domain ${r.json.trust_domain}, active root ${r.json.active_root_id}\n` +
            `${(r.json.roots as string[] | undefined)?.length ?? 0} trusted root(s)`,
        );
        return 0;
      }
      if (sub === "rotate" || sub === "finish") {
        _arity(args, 1, 1, this.usage);
        const body = sub === "rotate" ? { activate: ctx.flags.has("activate") } : {};
        const r = await ctx.call("POST", `/v1/ca/${sub}`, body);
        ctx.emit(
          r.json,
          () => rootsTable(r.json.ca as { activeRootId?: string; roots?: _CaRoot[] }),
        );
        return 0;
      }
      if (sub === "activate") {
        _arity(args, 2, 2, this.usage);
        const r = await ctx.call("POST", "/v1/ca/activate", { root_id: args[1] });
        ctx.emit(
          r.json,
          () => rootsTable(r.json.ca as { activeRootId?: string; roots?: _CaRoot[] }),
        );
        return 0;
      }
      if (sub === "revoke") {
        _arity(args, 1, 1, this.usage);
        const service = ctx.flags.get("service");
        const spiffeId = ctx.flags.get("spiffe-id");
        if ((service === undefined) === (spiffeId === undefined)) {
          throw new UsageError("ca revoke needs exactly one of --service S and --spiffe-id ID");
        }
        const r = await ctx.call("POST", "/v1/ca/revoke", {
          ...(service === undefined ? { spiffe_id: spiffeId } : { service }),
          reason: ctx.flags.get("reason") ?? "",
        });
        ctx.emit(
          r.json,
          () => `${r.json.spiffe_id} ${r.json.changed ? "revoked" : "was already revoked"}`,
        );
        return 0;
      }
      throw new UsageError(`unknown ca command ${JSON.stringify(sub)}; usage: ${this.usage}`);
    },
  },
  tokens: {
    usage:
      "skein ctl tokens [list | create --service S [--ttl 1h] [--uses N] | create --role R [--ttl T] [--name N] | operators | revoke ID]",
    summary:
      "Create a join token a proxy uses once to obtain its first certificate, or an operator token with a role; list or revoke them.",
    flags: [
      { name: "service", value: true, help: "service whose identity the token grants" },
      { name: "role", value: true, help: "operator token role: read, operator or admin" },
      { name: "name", value: true, help: "operator token holder, e.g. ci (default operator)" },
      { name: "ttl", value: true, help: "lifetime of the token, e.g. 1h (default 1h, max 7d)" },
      { name: "uses", value: true, help: "how many proxies may use it (default 1)" },
    ],
    async run(ctx, args) {
      const sub = args[0] ?? "list";
      if (sub === "list") {
        _arity(args, 0, 1, this.usage);
        const r = await ctx.call("GET", ctx.query("/v1/tokens"));
        const tokens = (r.json.tokens ?? []) as {
          id: string;
          service: string;
          expiresAt: number;
          uses: number;
          usesLeft: number;
        }[];
        ctx.emit(r.json, () =>
          formatTable(
            ["ID", "SERVICE", "USES_LEFT", "USES", "EXPIRES"],
            tokens.map((t) => [
              t.id,
              t.service,
              String(t.usesLeft),
              String(t.uses),
              new Date(t.expiresAt).toISOString(),
            ]),
          ));
        return 0;
      }
      if (sub === "operators") {
        _arity(args, 1, 1, this.usage);
        const r = await ctx.call("GET", ctx.query("/v1/operator-tokens"));
        const tokens = (r.json.tokens ?? []) as {
          id: string;
          name: string;
          role: string;
          expiresAt: number | null;
        }[];
        ctx.emit(r.json, () =>
          formatTable(
            ["ID", "NAME", "ROLE", "EXPIRES"],
            tokens.map((t) => [
              t.id,
              t.name,
              t.role,
              t.expiresAt === null ? "never" : new Date(t.expiresAt).toISOString(),
            ]),
          ));
        return 0;
      }
      if (sub === "revoke") {
        _arity(args, 2, 2, this.usage);
        const id = args[1]!;
        const r = await ctx.call("DELETE", `/v1/operator-tokens/${encodeURIComponent(id)}`);
        ctx.emit(r.json, () => `operator token ${id} revoked`);
        return 0;
      }
      if (sub !== "create") {
        throw new UsageError(`unknown tokens command ${JSON.stringify(sub)}; usage: ${this.usage}`);
      }
      _arity(args, 1, 1, this.usage);
      const role = ctx.flags.get("role");
      if (role !== undefined) {
        if (ctx.flags.get("service") !== undefined || ctx.flags.get("uses") !== undefined) {
          throw new UsageError(`--role creates an operator token; it takes no --service or --uses`);
        }
        if (!["read", "operator", "admin"].includes(role)) {
          throw new UsageError(
            `--role expects read, operator or admin, got ${JSON.stringify(role)}`,
          );
        }
        const ttl = ctx.flags.get("ttl");
        const name = ctx.flags.get("name");
        const r = await ctx.call("POST", "/v1/operator-tokens", {
          role,
          ...(ttl === undefined ? {} : { ttl }),
          ...(name === undefined ? {} : { name }),
        });
        // Bare token on stdout (shown once; the cluster keeps only its hash).
        ctx.emit(r.json, () => String(r.json.token));
        if (ctx.output === "table") {
          ctx.io.stderr(
            `operator token ${r.json.id} (${r.json.name}) with role ${r.json.role}, ` +
              `expires ${r.json.expires_at ?? "never"}; it is shown only once\n`,
          );
        }
        return 0;
      }
      const service = ctx.flags.get("service");
      if (!service) {
        throw new UsageError(`tokens create needs --service S or --role R; usage: ${this.usage}`);
      }
      const rawUses = ctx.flags.get("uses");
      if (rawUses !== undefined && !/^[1-9]\d{0,8}$/.test(rawUses)) {
        throw new UsageError(`--uses expects a positive integer, got ${JSON.stringify(rawUses)}`);
      }
      const r = await ctx.call("POST", "/v1/tokens", {
        service,
        ttl: ctx.flags.get("ttl") ?? "1h",
        uses: rawUses === undefined ? 1 : Number(rawUses),
      });
      // Table output is the bare token, so `$(skein ctl tokens create …)` captures it; the
      // secret is shown this once and the cluster keeps only its hash.
      ctx.emit(r.json, () => String(r.json.token));
      if (ctx.output === "table") {
        ctx.io.stderr(
          `join token ${r.json.id} for service ${r.json.service}: ${r.json.uses} use(s), ` +
            `expires ${r.json.expires_at}; it is shown only once\n`,
        );
      }
      return 0;
    },
  },
};

function _generalHelp(): string {
  const rows = Object.values(VERBS).map((v) =>
    `  ${v.usage.replace("skein ctl ", "").padEnd(58)} ${v.summary.split("\n")[0]}`
  );
  const flags = COMMON_FLAGS.map((f) =>
    `  ${(f.short ? `-${f.short}, ` : "    ") + "--" + f.name}${f.value ? " VALUE" : ""}`.padEnd(
      28,
    ) + ` ${f.help}`
  );
  return `usage: skein ctl <verb> [--control URL] [--token T] [-o table|json|yaml]\n\nverbs:\n${
    rows.join("\n")
  }\n\nflags:\n${flags.join("\n")}\n\n\`skein ctl <verb> --help\` shows the help of one verb.\n`;
}

/** Runs `skein ctl` with `args` (the words after `ctl`); returns the exit code. */
export async function runCtl(args: string[], io: CtlIo): Promise<number> {
  const verbName = args.find((a) => !a.startsWith("-"));
  if (verbName === undefined) {
    if (args.includes("--help") || args.includes("-h")) {
      io.stdout(_generalHelp());
      return 0;
    }
    io.stderr(`error: missing verb\n\n${_generalHelp()}`);
    return 2;
  }
  const verb = Object.hasOwn(VERBS, verbName) ? VERBS[verbName] : undefined;
  if (!verb) {
    const hint = didYouMean(verbName, Object.keys(VERBS));
    io.stderr(
      `error: unknown verb ${JSON.stringify(verbName)}${hint ? `; did you mean ${hint}?` : ""}\n` +
        `verbs: ${Object.keys(VERBS).join(", ")}\n`,
    );
    return 2;
  }
  const rest = [...args];
  rest.splice(rest.indexOf(verbName), 1);
  let parsed: ParsedArgs;
  try {
    parsed = parseArgs(rest, [...COMMON_FLAGS, ...verb.flags]);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`error: ${e.message}\nusage: ${verb.usage}\n`);
      return 2;
    }
    throw e;
  }
  if (parsed.flags.has("help")) {
    io.stdout(formatHelp(verb.usage, verb.summary, [...verb.flags, ...COMMON_FLAGS]));
    return 0;
  }
  const base = parsed.flags.get("control") ?? io.env.SKEIN_CONTROL ?? DEFAULT_CONTROL_URL;
  let url: URL;
  try {
    url = new URL(base);
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("not http(s)");
  } catch {
    io.stderr(
      `error: --control expects a URL like ${DEFAULT_CONTROL_URL}, got ${JSON.stringify(base)}\n`,
    );
    return 2;
  }
  // The token goes in the Authorization header: never in clear over a network.
  if (url.protocol === "http:" && !_LOOPBACK.has(url.hostname)) {
    io.stderr(
      `error: --control ${base} is plain http; the API is https only and the token would travel ` +
        `in clear (plain http is allowed to loopback addresses only)\n`,
    );
    return 2;
  }
  let token = parsed.flags.get("token") ?? io.env.SKEIN_TOKEN;
  const tokenFile = parsed.flags.get("token-file") ?? io.env.SKEIN_TOKEN_FILE;
  if (token === undefined && tokenFile !== undefined) {
    try {
      token = (await Deno.readTextFile(tokenFile)).trim();
    } catch (e) {
      io.stderr(`error: --token-file: ${(e as Error).message}\n`);
      return 2;
    }
  }
  if (!io.fetch && base.startsWith("https:")) {
    const caFile = parsed.flags.get("ca-file") ?? io.env.SKEIN_CA_FILE ?? DEFAULT_CA_FILE;
    let caCerts: string[] | null;
    try {
      caCerts = await readCaBundle(caFile);
    } catch (e) {
      io.stderr(`error: --ca-file: ${(e as Error).message}\n`);
      return 2;
    }
    if (caCerts === null) {
      io.stderr(
        `error: ${base} is https and the CA file ${caFile} does not exist (give --ca-file or SKEIN_CA_FILE)\n`,
      );
      return 2;
    }
    // Only the mesh roots, and only a control node's SPIFFE id: operator tokens travel on it.
    const http = new ControlHttp(caCerts);
    io = { ...io, fetch: (r: Request) => http.fetch(r) };
  }
  const ctx = new _Ctx(
    io,
    base,
    token,
    (parsed.flags.get("output") ?? "table") as Output,
    parsed.flags,
  );
  try {
    return await verb.run(ctx, parsed.positional);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`error: ${e.message}\n`);
      return 2;
    }
    if (e instanceof ConfigError) {
      io.stderr(`${e.message}\n`);
      return 2;
    }
    if (e instanceof CtlError) {
      io.stderr(`error: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
