/**
 * What a reload of proxy.yaml changes: a pure comparison of the running configuration with
 * the re-read one, saying which upstream listeners to open and close, which limits to apply,
 * and which keys need a restart (and so keep their running values).
 * @module
 */
import type { ProxyConfig, ProxyLimits } from "./proxy_schema.ts";
import { upstreamKey } from "./upstream_key.ts";
import type { z } from "zod";

/** One local service instance of proxy.yaml. */
export type LocalServiceConfig = ProxyConfig["services"][number];
/** One upstream listener of proxy.yaml. */
export type UpstreamConfig = ProxyConfig["upstreams"][number];
/** The proxy's data-plane limits. */
export type ProxyLimitsConfig = z.infer<typeof ProxyLimits>;

/** Limits a running data plane takes over (the others need a restart). */
export const RELOADABLE_LIMITS = [
  "max_header_bytes",
  "max_headers",
  "max_connections",
  "idle_timeout",
  "header_read_timeout",
] as const;

/** Top-level keys applied at run time (as a whole, or for `limits` key by key). */
export const RELOADABLE_PROXY_KEYS = ["services", "upstreams", "limits", "drain_timeout"] as const;

/** The key naming a local instance in proxy.yaml (its `id`, else its service name). */
export function localKey(s: { name: string; id?: string }): string {
  return s.id ?? s.name;
}

/** The local-service part of a reload, when `services` changed and can change at run time. */
export interface ServicesChange {
  /** Instances new or changed (registered again with their new fields). */
  register: LocalServiceConfig[];
  /** Instances gone (deregistered). */
  deregister: LocalServiceConfig[];
  /** Service names not running before: each needs its certificate before the change applies. */
  newNames: string[];
  /** The local apps behind `inbound` afterwards. */
  locals: { name: string; port: number; protocol: string }[];
}

/** What a reload does. */
export interface ProxyReloadPlan {
  /** The local services' change, or null when they stay as they run. */
  services: ServicesChange | null;
  /** Upstream listeners to open, in file order. */
  add: UpstreamConfig[];
  /** Keys ({@linkcode upstreamKey}) of upstream listeners to close (drained first). */
  remove: string[];
  /** The new limits, when a reloadable one changed. */
  limits: ProxyLimitsConfig | null;
  /** Changed keys that need a restart (dotted for `limits.*`); they keep their running values. */
  needsRestart: string[];
  /** Changes refused, with why (the rest still applies). */
  refused: string[];
  /** What is applied, one short `key` or `key=value` each, for the log. */
  applied: string[];
  /** The configuration that runs once the plan is applied. */
  running: ProxyConfig;
}

const _same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Compares the running configuration with the re-read one. */
export function planProxyReload(current: ProxyConfig, next: ProxyConfig): ProxyReloadPlan {
  const needsRestart: string[] = [];
  const refused: string[] = [];
  const applied: string[] = [];
  const keys = new Set([...Object.keys(current), ...Object.keys(next)]);
  for (const k of [...keys].sort()) {
    if ((RELOADABLE_PROXY_KEYS as readonly string[]).includes(k)) continue;
    // What decides the mesh identity and the calls' source label cannot move at run time.
    const a = (current as Record<string, unknown>)[k];
    const b = (next as Record<string, unknown>)[k];
    if (!_same(a, b)) needsRestart.push(k);
  }

  // Limits: the reloadable ones from the file, the others as they run.
  let limits: ProxyLimitsConfig | null = null;
  const merged: ProxyLimitsConfig = { ...current.limits };
  for (
    const k of Object.keys({ ...current.limits, ...next.limits }) as (keyof ProxyLimitsConfig)[]
  ) {
    if (current.limits[k] === next.limits[k]) continue;
    if ((RELOADABLE_LIMITS as readonly string[]).includes(k)) {
      merged[k] = next.limits[k];
      applied.push(`limits.${k}=${next.limits[k]}`);
      limits = merged;
    } else {
      needsRestart.push(`limits.${k}`);
    }
  }

  const services = _servicesChange(current.services, next.services);
  if (services === "restart") needsRestart.push("services");
  const runningList = services === null || services === "restart"
    ? current.services
    : next.services;
  if (services !== null && services !== "restart") {
    for (const s of services.deregister) applied.push(`-service:${localKey(s)}`);
    for (const s of services.register) applied.push(`+service:${localKey(s)}`);
  }

  const drain = next.drain_timeout;
  if (drain !== current.drain_timeout) applied.push(`drain_timeout=${drain}`);

  // Upstreams: an upstream is the same when its whole entry is; a changed entry is closed and
  // opened again (a different address or protocol is a different listener).
  const before = new Map(current.upstreams.map((u) => [upstreamKey(u), u]));
  const after = new Map(next.upstreams.map((u) => [upstreamKey(u), u]));
  const remove = [...before.entries()].filter(([k, u]) => !_same(after.get(k), u)).map(([k]) => k);
  // An upstream calls as one of the services that run; with `services` waiting for a restart,
  // one calling as a service not running yet would have no certificate to present.
  const runningServices = new Set(runningList.map((s) => s.name));
  const add: UpstreamConfig[] = [];
  for (const [k, u] of after) {
    if (_same(before.get(k), u)) continue;
    if (u.caller !== undefined && !runningServices.has(u.caller)) {
      refused.push(`upstream ${k}: caller ${u.caller} is not a running service (restart first)`);
      // Its running listener, if any, stays as it is.
      if (before.has(k)) remove.splice(remove.indexOf(k), 1);
      continue;
    }
    add.push(u);
  }
  for (const k of remove) applied.push(`-upstream:${k}`);
  for (const u of add) applied.push(`+upstream:${upstreamKey(u)}`);

  const kept = current.upstreams.filter((u) => !remove.includes(upstreamKey(u)));
  const running: ProxyConfig = {
    ...current,
    services: runningList,
    limits: merged,
    drain_timeout: drain,
    upstreams: [...kept, ...add],
  };
  return {
    services: services === "restart" ? null : services,
    add,
    remove,
    limits,
    needsRestart,
    refused,
    applied,
    running,
  };
}

/**
 * The services' change; "restart" when the first service changes (its certificate is the
 * proxy's default identity and its name the calls' source) or the list becomes or was empty.
 */
function _servicesChange(
  before: readonly LocalServiceConfig[],
  after: readonly LocalServiceConfig[],
): ServicesChange | null | "restart" {
  if (_same(before, after)) return null;
  if (before.length === 0 || after.length === 0 || before[0]!.name !== after[0]!.name) {
    return "restart";
  }
  const old = new Map(before.map((s) => [localKey(s), s]));
  const now = new Map(after.map((s) => [localKey(s), s]));
  const running = new Set(before.map((s) => s.name));
  return {
    register: after.filter((s) => !_same(old.get(localKey(s)), s)),
    // Gone, or now under another service name (the old registration must go).
    deregister: before.filter((s) => now.get(localKey(s))?.name !== s.name),
    newNames: [...new Set(after.map((s) => s.name))].filter((n) => !running.has(n)),
    locals: after.map((s) => ({ name: s.name, port: s.port, protocol: s.protocol })),
  };
}
