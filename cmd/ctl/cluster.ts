/**
 * `skein ctl status` and `skein ctl members`: the control cluster itself.
 * @module
 */
import { didYouMean } from "../../config/mod.ts";
import { UsageError } from "../cli/args.ts";
import { formatTable } from "./output.ts";
import { CTL_STATUS_PROBE_TIMEOUT_MS } from "./context.ts";
import { arity, CtlError, enc, type Verb } from "./context.ts";

/** `skein ctl status`. */
export const statusVerb: Verb = {
  usage: "skein ctl status [NODE]",
  summary: "Health of each control node (or of NODE): role, leader, term, commit index.",
  flags: [],
  async run(ctx, args) {
    arity(args, 0, 1, this.usage);
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
};

/** `skein ctl members`. */
export const membersVerb: Verb = {
  usage: "skein ctl members [list | add NODE=HOST:PORT [--api URL] | remove NODE]",
  summary: "List or change the control cluster's Raft membership.",
  flags: [{ name: "api", value: true, help: "API base URL of the node being added" }],
  async run(ctx, args) {
    const sub = args[0] ?? "list";
    if (sub === "list") {
      arity(args, 0, 1, this.usage);
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
      arity(args, 2, 2, this.usage);
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
      arity(args, 2, 2, this.usage);
      const r = await ctx.call("DELETE", `/v1/members/${enc(args[1]!)}`);
      ctx.emit(r.json, () => `member ${args[1]} removed`);
      return 0;
    }
    const hint = didYouMean(sub, ["list", "add", "remove"]);
    throw new UsageError(
      `unknown members subcommand ${JSON.stringify(sub)}${hint ? `; did you mean ${hint}?` : ""}`,
    );
  },
};
