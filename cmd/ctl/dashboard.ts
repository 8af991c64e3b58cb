/**
 * `skein ctl dashboard`: prints a link to the dashboard with a new read token.
 * @module
 */
import { arity, type Verb } from "./context.ts";
import { DASHBOARD_TOKEN_TTL, dashboardLink } from "./dashboard_link.ts";

/** `skein ctl dashboard`. */
export const dashboardVerb: Verb = {
  usage: "skein ctl dashboard [--ttl 12h]",
  summary: "Print a link to the dashboard with a new read token (needs an admin token).",
  flags: [{ name: "ttl", value: true, help: "lifetime of the link's read token (default 12h)" }],
  async run(ctx, args) {
    arity(args, 0, 0, this.usage);
    const ttl = ctx.flags.get("ttl") ?? DASHBOARD_TOKEN_TTL;
    const link = await dashboardLink((m, p, b) => ctx.call(m, p, b), ctx.base, ttl);
    ctx.emit({ url: link, ttl }, () => link);
    return 0;
  },
};
