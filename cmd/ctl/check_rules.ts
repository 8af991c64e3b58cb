/**
 * The judgements of `skein ctl check`, on a snapshot of what the control API answered: each
 * finding is one problem and how to fix it. Pure, so every rule is tested without a cluster.
 * @module
 */

/** Most clock difference between control nodes before it is a problem, in ms. */
export const CLOCK_SKEW_LIMIT_MS = 2_000;
/** A proxy not heard from for this long is a problem, in ms. */
export const HEARTBEAT_STALE_MS = 60_000;
/** A certificate expiring sooner than this without having renewed is a problem, in ms. */
export const CERT_SOON_MS = 3600_000;
/** A CA root expiring sooner than this is a problem, in ms. */
export const CA_SOON_MS = 30 * 86_400_000;

/** One control node as the check saw it. */
export interface NodeView {
  node: string;
  api: string | null;
  voter: boolean;
  /** Its `/v1/health`, or null when it did not answer. */
  health: {
    role?: string;
    leader?: string | null;
    time?: number;
    version?: string;
  } | null;
  /** Why it did not answer. */
  error?: string;
  /** This machine's clock halfway through the health request, ms. */
  localMid?: number;
}

/** One CA root. */
export interface RootView {
  notAfter: number;
  active: boolean;
  /** Set for the intermediate an offline root certified (it signs in the root's place). */
  intermediate?: boolean;
}

/** A proxy's self-report, as `GET /v1/proxies` returns it. */
export interface ProxyView {
  node: string;
  version: string;
  cert_not_after: number | null;
  unenforced: string[];
  services: string[];
  last_heartbeat: number;
}

/** An instance in the catalog. */
export interface InstanceView {
  version: string;
  health: string;
}

/** Everything the rules look at. */
export interface CheckSnapshot {
  nodes: NodeView[];
  /** The CA roots, or null when they could not be read. */
  roots: RootView[] | null;
  /** Proxy reports and the leader's clock when it listed them; null when unavailable. */
  proxies: { now: number; list: ProxyView[] } | null;
  /** Instances by service, or null when the catalog could not be read. */
  services: Record<string, InstanceView[]> | null;
  /** Stored resources (their bodies). */
  resources: Record<string, unknown>[];
}

/** One line of the report. */
export interface Finding {
  problem: string;
  fix: string;
}

const _ago = (ms: number) =>
  ms < 120_000
    ? `${Math.round(ms / 1000)} s`
    : ms < 7200_000
    ? `${Math.round(ms / 60_000)} min`
    : `${(ms / 3600_000).toFixed(1)} h`;

/** Every problem in `s`, in a stable order (control plane, CA, proxies, resources). */
export function checkFindings(s: CheckSnapshot): Finding[] {
  return [
    ..._controlFindings(s.nodes),
    ..._caFindings(s.roots, s.nodes),
    ..._proxyFindings(s.proxies, s.nodes),
    ..._resourceFindings(s.resources, s.services),
  ];
}

function _controlFindings(nodes: NodeView[]): Finding[] {
  const out: Finding[] = [];
  for (const n of nodes) {
    if (n.health !== null) continue;
    out.push({
      problem: `control node ${n.node} (${n.api ?? "no API address known"}) does not answer: ${
        n.error ?? "unreachable"
      }`,
      fix: `start it on its host (systemctl start skein-control) and see its log ` +
        `(journalctl -u skein-control), or if it is gone for good: skein ctl members remove ${n.node}`,
    });
  }
  const voters = nodes.filter((n) => n.voter);
  const up = voters.filter((n) => n.health !== null);
  const quorum = Math.floor(voters.length / 2) + 1;
  if (voters.length > 0 && up.length < quorum) {
    out.push({
      problem: `only ${up.length} of ${voters.length} voting control nodes answer; ` +
        `a quorum needs ${quorum}, so writes (registrations, resources, certificates) fail`,
      fix: "start the stopped control nodes above",
    });
  }
  const leaders = new Set(up.map((n) => n.health?.leader).filter((l): l is string => !!l));
  if (up.length > 0 && leaders.size === 0) {
    out.push({
      problem: "no control node knows a leader",
      fix: "check that the nodes reach each other on their raft ports (firewall, advertise " +
        "addresses) and see their logs (journalctl -u skein-control)",
    });
  } else if (leaders.size > 1) {
    out.push({
      problem: `control nodes disagree on the leader (${[...leaders].sort().join(", ")})`,
      fix: "wait one election timeout and check again; if it persists, see the nodes' logs",
    });
  }
  const timed = up.filter((n) => n.health?.time !== undefined && n.localMid !== undefined);
  if (timed.length >= 2) {
    const offsets = timed.map((n) => ({ node: n.node, off: n.health!.time! - n.localMid! }));
    offsets.sort((a, b) => a.off - b.off);
    const lo = offsets[0]!;
    const hi = offsets.at(-1)!;
    if (hi.off - lo.off > CLOCK_SKEW_LIMIT_MS) {
      out.push({
        problem: `the clocks of control nodes ${lo.node} and ${hi.node} differ by ${
          ((hi.off - lo.off) / 1000).toFixed(1)
        } s; certificates and tokens are judged by these clocks`,
        fix: "run time synchronisation (chrony or systemd-timesyncd) on every node",
      });
    }
  }
  const versions = new Set(up.map((n) => n.health?.version).filter((v): v is string => !!v));
  if (versions.size > 1) {
    out.push({
      problem: `control nodes run different skein versions (${
        up.map((n) => `${n.node} ${n.health?.version ?? "?"}`).join(", ")
      })`,
      fix: "finish the upgrade: the same version on every control node",
    });
  }
  return out;
}

function _caFindings(roots: RootView[] | null, nodes: NodeView[]): Finding[] {
  if (roots === null) return [];
  const now = _clusterNow(nodes);
  const out: Finding[] = [];
  for (const r of roots) {
    const left = r.notAfter - now;
    if (r.intermediate === true) {
      if (left < CA_SOON_MS) {
        out.push({
          problem: left <= 0
            ? `the CA intermediate expired ${_ago(-left)} ago; no certificate can be issued`
            : `the CA intermediate expires in ${Math.floor(left / 86_400_000)} days (${
              new Date(r.notAfter).toISOString()
            })`,
          fix: "where the root key is kept: skein ca intermediate --root-cert F --root-key F " +
            "--out DIR, then skein ctl ca rotate --intermediate-cert DIR/intermediate.pem " +
            "--intermediate-key DIR/intermediate.key",
        });
      }
      continue;
    }
    const which = r.active ? "the active CA root" : "a trusted CA root";
    if (left <= 0) {
      out.push({
        problem: `${which} expired ${_ago(-left)} ago (${new Date(r.notAfter).toISOString()})`,
        fix: r.active
          ? "rotate the CA now: skein ctl ca rotate --activate, then skein ctl ca finish"
          : "drop it: skein ctl ca finish",
      });
    } else if (r.active && left < CA_SOON_MS) {
      out.push({
        problem: `the active CA root expires in ${Math.floor(left / 86_400_000)} days (${
          new Date(r.notAfter).toISOString()
        })`,
        fix: "rotate the CA: skein ctl ca rotate, skein ctl ca activate ROOT_ID once every " +
          "proxy trusts it, then skein ctl ca finish",
      });
    }
  }
  return out;
}

/** The cluster's clock: the first answering node's, else this machine's. */
function _clusterNow(nodes: NodeView[]): number {
  const n = nodes.find((x) => x.health?.time !== undefined);
  return n?.health?.time ?? Date.now();
}

function _proxyFindings(
  proxies: CheckSnapshot["proxies"],
  nodes: NodeView[],
): Finding[] {
  if (proxies === null) return [];
  const out: Finding[] = [];
  const cpVersions = new Set(
    nodes.map((n) => n.health?.version).filter((v): v is string => !!v),
  );
  for (const p of proxies.list) {
    const who = `proxy ${p.node} (${p.services.join(", ") || "no services"})`;
    const silent = proxies.now - p.last_heartbeat;
    if (silent > HEARTBEAT_STALE_MS) {
      out.push({
        problem: `${who} sent its last heartbeat ${_ago(silent)} ago`,
        fix: `on ${p.node}: systemctl status skein-proxy and journalctl -u skein-proxy`,
      });
    }
    if (p.cert_not_after !== null) {
      const left = p.cert_not_after - proxies.now;
      const svc = p.services[0] ?? "SERVICE";
      if (left <= 0) {
        out.push({
          problem: `${who} reported a certificate that expired ${_ago(-left)} ago (${
            new Date(p.cert_not_after).toISOString()
          }); other proxies refuse it`,
          fix: `see why renewal failed (journalctl -u skein-proxy on ${p.node}); to re-enrol, ` +
            `put a new join token (skein ctl tokens create --service ${svc}) in its token_file, ` +
            `remove identity.json from its data_dir and restart it`,
        });
      } else if (left < CERT_SOON_MS) {
        out.push({
          problem: `${who} has a certificate expiring in ${_ago(left)} and has not renewed it`,
          fix: `see why renewal fails: journalctl -u skein-proxy on ${p.node}`,
        });
      }
    }
    if (cpVersions.size > 0 && !cpVersions.has(p.version)) {
      out.push({
        problem: `${who} runs skein ${p.version}, the control nodes ${
          [...cpVersions].sort().join(", ")
        }`,
        fix: "upgrade the proxy to the control plane's version (control nodes first, then proxies)",
      });
    }
    if (p.unenforced.length > 0) {
      out.push({
        problem: `${who} accepts but does not enforce: ${p.unenforced.join(", ")}`,
        fix: "remove these settings (proxy.yaml or the resources), or run a version that " +
          "enforces them; do not rely on them",
      });
    }
  }
  return out;
}

function _resourceFindings(
  resources: Record<string, unknown>[],
  services: Record<string, InstanceView[]> | null,
): Finding[] {
  if (services === null) return [];
  const out: Finding[] = [];
  for (const r of resources) {
    const kind = String(r.kind);
    const service = typeof r.service === "string" ? r.service : null;
    if (service === null) continue;
    const instances = services[service];
    if (!instances || instances.length === 0) {
      out.push({
        problem: `${kind}/${service} is for service ${service}, which has no registered instance`,
        fix:
          `start ${service} behind a proxy, or if it is gone: skein ctl delete ${kind} ${service}`,
      });
      continue;
    }
    if (kind !== "Route" || !Array.isArray(r.rules)) continue;
    const versions = new Set(instances.map((i) => i.version));
    (r.rules as { backends?: { version?: string; weight?: number }[] }[]).forEach((rule, i) => {
      const backends = rule.backends ?? [];
      const total = backends.reduce((n, b) => n + (b.weight ?? 100), 0);
      for (const b of backends) {
        if (b.version === undefined || versions.has(b.version)) continue;
        const w = b.weight ?? 100;
        if (w === 0) continue;
        const pct = total > 0 ? Math.round((w / total) * 1000) / 10 : 0;
        out.push({
          problem: `Route/${service} rules[${i}] sends ${pct}% to version ${b.version} of ` +
            `${service}, which has no instance (those requests get 503)`,
          fix: `start instances of ${service} with version: ${b.version}, or set that backend's ` +
            `weight to 0 and skein ctl apply the Route`,
        });
      }
    });
  }
  return out;
}
