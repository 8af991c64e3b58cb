/**
 * What this version accepts in configuration and resources but does not act on yet: SPEC
 * features not built (access log, OTLP export, ExternalService; see
 * `docs/status.md`). They stay valid input, so files written for a later version load, but the
 * proxy and `skein ctl apply` say so instead of letting an operator believe they are in force.
 * @module
 */
import type { ProxyConfig } from "./proxy_schema.ts";
import { type Resource, RETIRED_POLICY_KEYS } from "./resource_schema.ts";

/** The proxy.yaml settings given in `cfg` that this version ignores, by key path. */
export function unenforcedSettings(cfg: ProxyConfig): string[] {
  const out: string[] = [];
  if (cfg.access_log !== undefined) out.push("access_log");
  if (cfg.telemetry.otlp !== undefined) out.push("telemetry.otlp");
  return out;
}

/** The parts of `resources` this version's proxies do not enforce, one description each. */
export function unenforcedResourceParts(resources: readonly Resource[]): string[] {
  const out: string[] = [];
  for (const r of resources) {
    if (r.kind === "ExternalService") out.push(`ExternalService/${r.name}`);
    else if (r.kind === "Policy") {
      for (const k of RETIRED_POLICY_KEYS) {
        if (r.circuit_breaker?.[k] !== undefined) {
          out.push(`Policy/${r.service} circuit_breaker.${k}`);
        }
      }
    }
  }
  return out;
}
