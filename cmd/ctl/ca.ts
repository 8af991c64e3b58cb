/**
 * `skein ctl ca`: CA roots, rotation and revocation.
 * @module
 */
import { UsageError } from "../cli/args.ts";
import { formatTable } from "./output.ts";
import { formatCaStatus, rotateBody, writeExportedSeed } from "./ca_format.ts";
import { arity, type Verb } from "./context.ts";

/** A CA root as the rotation routes show it (no key). */
interface _CaRoot {
  id: string;
  generation: number;
  notAfter: number;
  /** The intermediate signing in an offline root's place. */
  intermediate?: { id: string; notAfter: number };
}

/** A rotated-out intermediate as the CA routes show it. */
interface _Retired {
  id: string;
  fingerprint: string;
  notAfter: number;
  distrustedAt: number | null;
}

/** `skein ctl ca`. */
export const caVerb: Verb = {
  usage:
    "skein ctl ca [roots | status | rotate [--activate | --intermediate-cert F --intermediate-key F] | activate ROOT_ID | finish | distrust-intermediate ID|FINGERPRINT [--now] | export-seed --out DIR | revoke (--service S | --spiffe-id ID) [--reason R]]",
  summary:
    "Show the CA roots; rotate the CA (the leader trusts a new root, activates it once every member holds it, then drops the old one; status shows the phase and who is missing); distrust a rotated-out intermediate (once no member's leaf comes from it, or --now); write the seed files a new control node needs; revoke an identity.",
  flags: [
    { name: "activate", value: false, help: "rotate: sign with the new root at once" },
    {
      name: "intermediate-cert",
      value: true,
      help:
        "rotate: install this intermediate (from `skein ca intermediate`) instead of a new root",
    },
    { name: "intermediate-key", value: true, help: "rotate: the new intermediate's key" },
    {
      name: "now",
      value: false,
      help: "distrust-intermediate: at once, cutting off members that still hold a leaf from it",
    },
    { name: "out", value: true, help: "export-seed: directory for ca.pem and ca.key (0600)" },
    { name: "service", value: true, help: "revoke: the service whose identity is revoked" },
    { name: "spiffe-id", value: true, help: "revoke: an exact SPIFFE id" },
    { name: "reason", value: true, help: "revoke: a note kept with the revocation" },
  ],
  async run(ctx, args) {
    const sub = args[0] ?? "roots";
    const rootsTable = (ca: { activeRootId?: string; roots?: _CaRoot[] }) =>
      formatTable(
        ["ROOT", "GENERATION", "ACTIVE", "NOT_AFTER", "INTERMEDIATE", "INTERMEDIATE_NOT_AFTER"],
        (ca.roots ?? []).map((r) => [
          r.id,
          String(r.generation),
          r.id === ca.activeRootId ? "yes" : "",
          new Date(r.notAfter).toISOString(),
          r.intermediate?.id ?? "",
          r.intermediate ? new Date(r.intermediate.notAfter).toISOString() : "",
        ]),
      );
    if (sub === "roots") {
      arity(args, 0, 1, this.usage);
      const r = await ctx.call("GET", ctx.query("/v1/ca/roots"));
      const retired = (r.json.retired_intermediates ?? []) as {
        id: string;
        distrusted_at: string | null;
      }[];
      ctx.emit(
        r.json,
        () =>
          `trust domain ${r.json.trust_domain}, active root ${r.json.active_root_id}\n` +
          `${(r.json.roots as string[] | undefined)?.length ?? 0} trusted root(s)` +
          retired.map((x) =>
            `\nrotated-out intermediate ${x.id}: ` +
            (x.distrusted_at === null ? "still trusted" : `distrusted since ${x.distrusted_at}`)
          ).join(""),
      );
      return 0;
    }
    if (sub === "status") {
      arity(args, 1, 1, this.usage);
      const r = await ctx.call("GET", "/v1/ca/rotation");
      ctx.emit(r.json, () => formatCaStatus(r.json));
      return 0;
    }
    if (sub === "export-seed") {
      arity(args, 1, 1, this.usage);
      const out = ctx.flags.get("out");
      if (out === undefined) throw new UsageError("ca export-seed needs --out DIR");
      const r = await ctx.call("POST", "/v1/ca/export-seed", {});
      const w = await writeExportedSeed(r.json, out);
      ctx.emit(
        { root_id: w.rootId, files: w.files, offline_root: w.offline },
        () =>
          `wrote ${w.files.join(", ")} (0600), root ${w.rootId}: ` +
          (w.offline
            ? "tls.ca_cert_file, tls.intermediate_cert_file and tls.intermediate_key_file"
            : "tls.ca_cert_file and tls.ca_key_file") +
          " of a new control node",
      );
      return 0;
    }
    if (sub === "rotate" || sub === "finish") {
      arity(args, 1, 1, this.usage);
      const body = sub === "rotate" ? await rotateBody(ctx.flags) : {};
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
    if (sub === "distrust-intermediate") {
      arity(args, 2, 2, this.usage);
      const r = await ctx.call("POST", "/v1/ca/distrust-intermediate", {
        intermediate: args[1],
        now: ctx.flags.has("now"),
      });
      ctx.emit(r.json, () => {
        const list = (r.json.ca as { retiredIntermediates?: _Retired[] }).retiredIntermediates;
        return formatTable(
          ["RETIRED_INTERMEDIATE", "FINGERPRINT", "NOT_AFTER", "DISTRUSTED"],
          (list ?? []).map((x) => [
            x.id,
            x.fingerprint,
            new Date(x.notAfter).toISOString(),
            x.distrustedAt === null ? "" : new Date(x.distrustedAt).toISOString(),
          ]),
        );
      });
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
