/**
 * `skein ctl ca`: CA roots, rotation and revocation.
 * @module
 */
import { UsageError } from "../args.ts";
import { formatTable } from "../ctl_output.ts";
import { arity, type Verb } from "./context.ts";

/** A CA root as the rotation routes show it (no key). */
interface _CaRoot {
  id: string;
  generation: number;
  notAfter: number;
}

/** `skein ctl ca`. */
export const caVerb: Verb = {
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
      arity(args, 0, 1, this.usage);
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
      arity(args, 1, 1, this.usage);
      const body = sub === "rotate" ? { activate: ctx.flags.has("activate") } : {};
      const r = await ctx.call("POST", `/v1/ca/${sub}`, body);
      ctx.emit(
        r.json,
        () => rootsTable(r.json.ca as { activeRootId?: string; roots?: _CaRoot[] }),
      );
      return 0;
    }
    if (sub === "activate") {
      arity(args, 2, 2, this.usage);
      const r = await ctx.call("POST", "/v1/ca/activate", { root_id: args[1] });
      ctx.emit(
        r.json,
        () => rootsTable(r.json.ca as { activeRootId?: string; roots?: _CaRoot[] }),
      );
      return 0;
    }
    if (sub === "revoke") {
      arity(args, 1, 1, this.usage);
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
};
