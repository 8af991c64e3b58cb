/**
 * The `ExternalService` resources of a catalog as the router looks them up: by name (an
 * upstream's `service`) and by host name (a `Host` on `http_proxy`). Pure: no I/O.
 * @module
 */
import type { Resource } from "../../config/resource_schema.ts";

/** One `host:port` of an external service. */
export interface ExternalHost {
  /** Host name (or IP address) as written, lower-cased. */
  readonly host: string;
  /** TCP port. */
  readonly port: number;
}

/** One external service, read from its resource. */
export interface ExternalEntry {
  /** The resource's name (what upstreams and Policies name). */
  readonly name: string;
  /** Its hosts, in order. */
  readonly hosts: readonly ExternalHost[];
  /** The CA file its hosts must chain to; null = the runtime's built-in roots. */
  readonly caFile: string | null;
  /** The resource as JSON, to tell an unchanged one from a changed one. */
  readonly source: string;
}

/** The external services of one catalog. */
export interface ExternalTable {
  /** By resource name. */
  readonly byName: ReadonlyMap<string, ExternalEntry>;
  /**
   * Resource name by `host:port` and by host name alone (lower-case); the first resource
   * listing one wins it.
   */
  readonly byHost: ReadonlyMap<string, string>;
  /** `host:port`s listed by more than one resource: the names after the first are ignored. */
  readonly conflicts: readonly { host: string; kept: string; ignored: string }[];
}

/** An empty table. */
export const EMPTY_EXTERNAL_TABLE: ExternalTable = {
  byName: new Map(),
  byHost: new Map(),
  conflicts: [],
};

/** Splits a validated `host:port`. */
export function parseExternalHost(hostPort: string): ExternalHost {
  const i = hostPort.lastIndexOf(":");
  return { host: hostPort.slice(0, i).toLowerCase(), port: Number(hostPort.slice(i + 1)) };
}

/** Reads the `ExternalService` resources among `resources`. */
export function externalTable(resources: readonly Resource[]): ExternalTable {
  const byName = new Map<string, ExternalEntry>();
  const byHost = new Map<string, string>();
  const conflicts: { host: string; kept: string; ignored: string }[] = [];
  for (const r of resources) {
    if (r.kind !== "ExternalService" || byName.has(r.name)) continue;
    const hosts = r.hosts.map(parseExternalHost);
    byName.set(r.name, {
      name: r.name,
      hosts,
      caFile: r.tls?.ca_file ?? null,
      source: JSON.stringify(r),
    });
    for (const h of hosts) {
      const hostPort = `${h.host}:${h.port}`;
      const kept = byHost.get(hostPort);
      if (kept === undefined) byHost.set(hostPort, r.name);
      else if (kept !== r.name) conflicts.push({ host: hostPort, kept, ignored: r.name });
      if (!byHost.has(h.host)) byHost.set(h.host, r.name);
    }
  }
  return { byName, byHost, conflicts };
}

/** The endpoint key of an external host: unique per service, so pools never mix CA choices. */
export function externalEndpointKey(name: string, h: ExternalHost): string {
  return `${name}@${h.host}:${h.port}`;
}

/** The `Host` header line a request to `h` carries (the port only when not 443). */
export function hostLine(h: ExternalHost): string {
  return `host: ${h.port === 443 ? h.host : `${h.host}:${h.port}`}\r\n`;
}

/**
 * The origin-form of an absolute-form target (`http://api.example.com/v1?x` gives `/v1?x`), or
 * null when `target` is not absolute-form: hosts outside the mesh get the form every server
 * takes (RFC 9112 section 3.2.1).
 */
export function originForm(target: string): string | null {
  if (target.charCodeAt(0) === 47) return null;
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(target);
  if (m === null) return null;
  const rest = target.slice(m[0].length);
  return rest === "" ? "/" : rest.startsWith("/") ? rest : `/${rest}`;
}
