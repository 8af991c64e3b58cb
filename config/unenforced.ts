/**
 * What this version accepts in resources but does not act on: the Policy keys it no longer acts
 * on, and a RateLimit for an ExternalService (limits are kept by the proxies fronting a service,
 * and none fronts an external host). They stay valid input, so files written for another
 * version load, but the proxy and `skein ctl apply` say so instead of letting an operator
 * believe they are in force.
 * @module
 */
import { type Resource, RETIRED_POLICY_KEYS } from "./resource_schema.ts";

/** The parts of `resources` this version's proxies do not enforce, one description each. */
export function unenforcedResourceParts(resources: readonly Resource[]): string[] {
  const out: string[] = [];
  const external = new Set<string>();
  for (const r of resources) if (r.kind === "ExternalService") external.add(r.name);
  for (const r of resources) {
    if (r.kind === "RateLimit" && external.has(r.service)) {
      out.push(`RateLimit/${r.service} (for an ExternalService)`);
    } else if (r.kind === "Policy") {
      for (const k of RETIRED_POLICY_KEYS) {
        if (r.circuit_breaker?.[k] !== undefined) {
          out.push(`Policy/${r.service} circuit_breaker.${k}`);
        }
      }
    }
  }
  return out;
}
