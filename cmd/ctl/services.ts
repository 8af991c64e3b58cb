/**
 * `skein ctl services`: the catalog of services and their instances.
 * @module
 */
import { formatTable } from "./output.ts";
import { arity, enc, type Verb } from "./context.ts";

/** `skein ctl services`. */
export const servicesVerb: Verb = {
  usage: "skein ctl services [NAME] [--healthy] [--zone Z] [--capability C]",
  summary: "Services with instance counts by health, or the instances of service NAME.",
  flags: [
    { name: "healthy", value: false, help: "only instances that can take traffic" },
    { name: "zone", value: true, help: "only instances in this zone" },
    { name: "capability", value: true, help: "only instances with this capability" },
  ],
  async run(ctx, args) {
    arity(args, 0, 1, this.usage);
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
    const r = await ctx.call("GET", ctx.query(`/v1/services/${enc(args[0]!)}${qs}`));
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
};
