/**
 * Network address syntax used in configuration: `host:port`, and Raft peers `id=host:port`.
 * @module
 */

/** A parsed `host:port`; `hostname` has no brackets even for IPv6. */
export interface HostPort {
  hostname: string;
  port: number;
}

const HOSTNAME =
  /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6 = /^[0-9a-fA-F:.]+$/;

/** Returns whether `s` is a valid hostname, IPv4 or IPv6 literal (without brackets). */
export function isHost(s: string): boolean {
  if (IPV4.test(s)) return true;
  if (s.includes(":")) return IPV6.test(s) && s.split(":").length <= 9;
  // A dotted all-numeric name that is not a valid IPv4 is a typo, not a hostname.
  if (/^[\d.]+$/.test(s)) return false;
  return HOSTNAME.test(s);
}

/** Parses `host:port` (IPv6 as `[::1]:80`); returns an error message instead of throwing. */
export function parseHostPort(text: string): HostPort | string {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:\[\]]+):(\d+)$/.exec(text);
  if (!m) return `expected an address like "127.0.0.1:7400", got ${JSON.stringify(text)}`;
  const hostname = m[1]!;
  const port = Number(m[2]);
  if (!isHost(hostname)) return `expected a valid host name or IP in ${JSON.stringify(text)}`;
  if (!Number.isInteger(port) || port < 0 || port > 65535 || m[2]!.length > 5) {
    return `expected a port from 0 to 65535, got ${m[2]}`;
  }
  return { hostname, port };
}

/** Formats a HostPort back to `host:port`, bracketing IPv6. */
export function formatHostPort(hp: HostPort): string {
  return hp.hostname.includes(":") ? `[${hp.hostname}]:${hp.port}` : `${hp.hostname}:${hp.port}`;
}

/** A control-plane peer from `peers:` in control.yaml. */
export interface PeerSpec extends HostPort {
  id: string;
}

/** Parses `id=host:port`; returns an error message instead of throwing. */
export function parsePeer(text: string): PeerSpec | string {
  const eq = text.indexOf("=");
  if (eq <= 0) return `expected a peer like "cp-1=10.0.0.1:7401", got ${JSON.stringify(text)}`;
  const id = text.slice(0, eq);
  if (!NODE_ID.test(id)) {
    return `expected a node id of letters, digits, "-", "_" or ".", got ${JSON.stringify(id)}`;
  }
  const hp = parseHostPort(text.slice(eq + 1));
  if (typeof hp === "string") return hp;
  return { id, ...hp };
}

/** Node ids and service names: short, URL- and label-safe. */
export const NODE_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
