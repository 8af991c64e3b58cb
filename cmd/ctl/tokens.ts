/**
 * `skein ctl tokens`: join tokens and operator tokens.
 * @module
 */
import { UsageError } from "../cli/args.ts";
import { formatTable } from "./output.ts";
import { arity, type Verb } from "./context.ts";

/** `skein ctl tokens`. */
export const tokensVerb: Verb = {
  usage:
    "skein ctl tokens [list | create --service S | --gateway G [--ttl 1h] [--uses N] | create --role R [--ttl T] [--name N] | operators | revoke ID]",
  summary:
    "Create a join token a proxy uses once to obtain its first certificate, or an operator token with a role; list or revoke them.",
  flags: [
    { name: "service", value: true, help: "service whose identity the token grants" },
    {
      name: "gateway",
      value: true,
      help: "ingress gateway whose identity (spiffe://<td>/gateway/NAME) the token grants",
    },
    { name: "role", value: true, help: "operator token role: read, operator or admin" },
    { name: "name", value: true, help: "operator token holder, e.g. ci (default operator)" },
    { name: "ttl", value: true, help: "lifetime of the token, e.g. 1h (default 1h, max 7d)" },
    { name: "uses", value: true, help: "how many proxies may use it (default 1)" },
  ],
  async run(ctx, args) {
    const sub = args[0] ?? "list";
    if (sub === "list") {
      arity(args, 0, 1, this.usage);
      const r = await ctx.call("GET", ctx.query("/v1/tokens"));
      const tokens = (r.json.tokens ?? []) as {
        id: string;
        service: string;
        kind?: string;
        expiresAt: number;
        uses: number;
        usesLeft: number;
      }[];
      ctx.emit(r.json, () =>
        formatTable(
          ["ID", "SERVICE", "USES_LEFT", "USES", "EXPIRES"],
          tokens.map((t) => [
            t.id,
            t.kind === "gateway" ? `gateway/${t.service}` : t.service,
            String(t.usesLeft),
            String(t.uses),
            new Date(t.expiresAt).toISOString(),
          ]),
        ));
      return 0;
    }
    if (sub === "operators") {
      arity(args, 1, 1, this.usage);
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
      arity(args, 2, 2, this.usage);
      const id = args[1]!;
      const r = await ctx.call("DELETE", `/v1/operator-tokens/${encodeURIComponent(id)}`);
      ctx.emit(r.json, () => `operator token ${id} revoked`);
      return 0;
    }
    if (sub !== "create") {
      throw new UsageError(`unknown tokens command ${JSON.stringify(sub)}; usage: ${this.usage}`);
    }
    arity(args, 1, 1, this.usage);
    const role = ctx.flags.get("role");
    if (role !== undefined) {
      if (
        ctx.flags.get("service") !== undefined || ctx.flags.get("gateway") !== undefined ||
        ctx.flags.get("uses") !== undefined
      ) {
        throw new UsageError(
          `--role creates an operator token; it takes no --service, --gateway or --uses`,
        );
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
    const gateway = ctx.flags.get("gateway");
    if (!service === !gateway) {
      throw new UsageError(
        `tokens create needs one of --service S, --gateway G or --role R; usage: ${this.usage}`,
      );
    }
    const rawUses = ctx.flags.get("uses");
    if (rawUses !== undefined && !/^[1-9]\d{0,8}$/.test(rawUses)) {
      throw new UsageError(`--uses expects a positive integer, got ${JSON.stringify(rawUses)}`);
    }
    const r = await ctx.call("POST", "/v1/tokens", {
      ...(service ? { service } : { gateway }),
      ttl: ctx.flags.get("ttl") ?? "1h",
      uses: rawUses === undefined ? 1 : Number(rawUses),
    });
    // Table output is the bare token, so `$(skein ctl tokens create …)` captures it; the
    // secret is shown this once and the cluster keeps only its hash.
    ctx.emit(r.json, () => String(r.json.token));
    if (ctx.output === "table") {
      ctx.io.stderr(
        `join token ${r.json.id} for ${
          r.json.gateway !== undefined ? `gateway ${r.json.gateway}` : `service ${r.json.service}`
        }: ${r.json.uses} use(s), ` +
          `expires ${r.json.expires_at}; it is shown only once\n`,
      );
    }
    return 0;
  },
};
