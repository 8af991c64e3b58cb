/**
 * What this version accepts in resources but does not act on yet: SPEC features not built
 * (RateLimit, Route mirror and fault; see `docs/status.md`). They stay valid input, so files written for a later version load, but the
 * proxy and `skein ctl apply` say so instead of letting an operator believe they are in force.
 * @module
 */
import type { Resource } from "./resource_schema.ts";

/** The parts of `resources` this version's proxies do not enforce, one description each. */
export function unenforcedResourceParts(resources: readonly Resource[]): string[] {
  const out: string[] = [];
  for (const r of resources) {
    if (r.kind === "RateLimit") out.push(`RateLimit/${r.service}`);
    else if (r.kind === "Route") {
      r.rules.forEach((rule, i) => {
        if (rule.mirror !== undefined) out.push(`Route/${r.service} rules[${i}].mirror`);
        if (rule.fault !== undefined) out.push(`Route/${r.service} rules[${i}].fault`);
      });
    }
  }
  return out;
}
