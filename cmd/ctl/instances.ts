/**
 * `skein ctl instances register|deregister|drain`: change the catalog by hand, for operators
 * and scripts (an instance without a proxy, or one to take out of rotation before work on it).
 * @module
 */
import { didYouMean } from "../../config/mod.ts";
import { UsageError } from "../cli/args.ts";
import { arity, enc, type Verb } from "./context.ts";

const _USAGE = "skein ctl instances register SERVICE ID --address A --port P [--version V] " +
  "[--zone Z] [--weight W] [--node N] | deregister SERVICE ID | drain SERVICE ID";

function _int(flag: string, raw: string | undefined, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max) {
    throw new UsageError(`--${flag} expects a whole number from ${min} to ${max}, got ${raw}`);
  }
  return n;
}

/** `skein ctl instances`. */
export const instancesVerb: Verb = {
  usage: _USAGE,
  summary: "Register an instance by hand, deregister one, or drain one (weight 0: no new " +
    "requests, still registered). A proxy re-registering its instance (at its restart) sets " +
    "the weight from its proxy.yaml again.",
  flags: [
    { name: "address", value: true, help: "register: the address callers reach (required)" },
    { name: "port", value: true, help: "register: the port (required)" },
    { name: "version", value: true, help: "register: the instance's version" },
    { name: "zone", value: true, help: "register: the instance's zone" },
    { name: "weight", value: true, help: "register: load-balancing weight (default 1)" },
    { name: "node", value: true, help: "register: the machine it runs on" },
  ],
  examples: [
    "skein ctl instances register legacy-db db-1 --address 10.0.0.7 --port 5432",
    "skein ctl instances drain payments vm-12-payments   # before maintenance on vm-12",
    "skein ctl instances deregister legacy-db db-1",
  ],
  checkArgs(args) {
    const sub = args[0];
    if (sub === undefined) throw new UsageError(`instances needs a subcommand; usage: ${_USAGE}`);
    if (!["register", "deregister", "drain"].includes(sub)) {
      const hint = didYouMean(sub, ["register", "deregister", "drain"]);
      throw new UsageError(
        `unknown instances subcommand ${JSON.stringify(sub)}${
          hint ? `; did you mean ${hint}?` : ""
        }`,
      );
    }
    arity(args, 3, 3, _USAGE);
  },
  async run(ctx, args) {
    this.checkArgs!(args);
    const [sub, service, id] = args as [string, string, string];
    const path = `/v1/services/${enc(service)}/instances/${enc(id)}`;
    if (sub === "deregister") {
      const r = await ctx.call("DELETE", path);
      ctx.emit(r.json, () => `instance ${service}/${id} deregistered`);
      return 0;
    }
    if (sub === "drain") {
      const list = await ctx.call("GET", ctx.query(`/v1/services/${enc(service)}`));
      const found = ((list.json.instances ?? []) as Record<string, unknown>[])
        .find((i) => i.id === id);
      if (!found) throw new UsageError(`no instance ${id} of service ${service}`);
      const r = await ctx.call("PUT", path, { ...found, weight: 0 });
      ctx.emit(
        r.json,
        () => `instance ${service}/${id} drained: weight 0, no new requests reach it`,
      );
      return 0;
    }
    const address = ctx.flags.get("address");
    const port = _int("port", ctx.flags.get("port"), 1, 65535);
    if (!address || port === undefined) {
      throw new UsageError(`instances register needs --address and --port; usage: ${_USAGE}`);
    }
    const body: Record<string, unknown> = { address, port };
    for (const f of ["version", "zone", "node"]) {
      if (ctx.flags.has(f)) body[f] = ctx.flags.get(f);
    }
    const weight = _int("weight", ctx.flags.get("weight"), 0, 1_000_000);
    if (weight !== undefined) body.weight = weight;
    const r = await ctx.call("PUT", path, body);
    ctx.emit(
      r.json,
      () => `instance ${service}/${id} registered at ${address}:${port} (index ${r.json.index})`,
    );
    return 0;
  },
};
