/**
 * `skein ctl check`: asks the control API what a health check needs (members and their health,
 * CA roots, proxy reports, the catalog) and prints one line per problem with its fix.
 * Exit 0 when healthy, 1 when anything is wrong.
 * @module
 */
import { X509Certificate } from "node:crypto";
import { CTL_STATUS_PROBE_TIMEOUT_MS, type CtlContext, type Verb } from "./context.ts";
import { arity } from "./context.ts";
import {
  checkFindings,
  type CheckSnapshot,
  type Finding,
  type InstanceView,
  type NodeView,
  type ProxyView,
  type RootView,
} from "./check_rules.ts";

/** `skein ctl check`. */
export const checkVerb: Verb = {
  usage: "skein ctl check",
  summary: "Check the whole mesh from here: control quorum and leader, clock skew, CA expiry " +
    "and rotation, every proxy's certificate, heartbeat, version and unenforced settings, and " +
    "resources that point at missing services or versions. Prints one line per problem with " +
    "its fix; exit 0 when healthy, 1 otherwise.",
  flags: [],
  examples: [
    "skein ctl check --control https://10.0.0.1:7400 --token-file ~/.skein/read.token",
    "skein ctl check -o json   # {ok, problems: [{problem, fix}], notes}",
  ],
  async run(ctx, args) {
    arity(args, 0, 0, this.usage);
    const { snapshot, unreadable } = await gatherSnapshot(ctx);
    const findings = [...unreadable, ...checkFindings(snapshot)];
    const notes = _notes(snapshot);
    ctx.emit({ ok: findings.length === 0, problems: findings, notes }, () => {
      // One line per problem, so scripts can count and grep them.
      const lines = findings.map((f) => `problem: ${f.problem}; fix: ${f.fix}`);
      if (findings.length === 0) lines.push(`ok: ${_summary(snapshot)}`);
      return [...lines, ...notes.map((n) => `note: ${n}`)].join("\n");
    });
    return findings.length === 0 ? 0 : 1;
  },
};

/** Asks every source; what cannot be read becomes a finding instead of an abort. */
export async function gatherSnapshot(
  ctx: CtlContext,
): Promise<{ snapshot: CheckSnapshot; unreadable: Finding[] }> {
  const unreadable: Finding[] = [];
  const tryCall = async (what: string, path: string, fix: string) => {
    try {
      return (await ctx.call("GET", path)).json;
    } catch (e) {
      unreadable.push({ problem: `cannot read ${what}: ${(e as Error).message}`, fix });
      return null;
    }
  };
  const tokenFix = "give a token with the read role (--token-file) and the right --control URL";
  const membersJson = await tryCall("the control members", "/v1/members", tokenFix);
  const members = (membersJson?.members ?? []) as {
    node: string;
    api?: string | null;
    voter?: boolean;
  }[];
  const nodes: NodeView[] = await Promise.all(members.map(async (m) => {
    const base: NodeView = {
      node: m.node,
      api: m.api ?? null,
      voter: m.voter ?? true,
      health: null,
    };
    if (!m.api) return { ...base, error: "no API address known" };
    const t0 = Date.now();
    try {
      const h = await ctx.call("GET", "/v1/health", undefined, {
        base: m.api,
        timeoutMs: CTL_STATUS_PROBE_TIMEOUT_MS,
      });
      return { ...base, health: h.json as NodeView["health"], localMid: (t0 + Date.now()) / 2 };
    } catch (e) {
      return { ...base, error: (e as Error).message };
    }
  }));
  const rootsJson = await tryCall("the CA roots", "/v1/ca/roots", tokenFix);
  let roots: RootView[] | null = null;
  if (rootsJson) {
    const pems = (rootsJson.roots ?? []) as string[];
    roots = pems.flatMap((pem) => {
      try {
        const notAfter = Date.parse(new X509Certificate(pem).validTo);
        // The API lists roots without saying which signs; with one root it is that one.
        return [{ notAfter, active: pems.length === 1 }];
      } catch {
        return [];
      }
    });
    const inter = rootsJson.intermediate as { not_after?: string } | null | undefined;
    const interNotAfter = Date.parse(inter?.not_after ?? "");
    if (Number.isFinite(interNotAfter)) {
      roots.push({ notAfter: interNotAfter, active: true, intermediate: true });
    }
  }
  const proxiesJson = await tryCall(
    "the proxies' reports",
    "/v1/proxies",
    "the control nodes may run an older skein without GET /v1/proxies; upgrade them",
  );
  const proxies = proxiesJson
    ? { now: Number(proxiesJson.now), list: (proxiesJson.proxies ?? []) as ProxyView[] }
    : null;
  const catalog = await tryCall("the catalog", ctx.query("/v1/catalog"), tokenFix);
  const services = catalog
    ? Object.fromEntries(
      Object.entries((catalog.services ?? {}) as Record<string, InstanceView[]>),
    )
    : null;
  const resources = (catalog?.resources ?? []) as Record<string, unknown>[];
  return { snapshot: { nodes, roots, proxies, services, resources }, unreadable };
}

function _notes(s: CheckSnapshot): string[] {
  const out: string[] = [];
  if (s.roots && s.roots.length > 1) {
    out.push(
      `CA rotation in progress: ${s.roots.length} roots trusted; once every proxy has renewed ` +
        `with the new root, skein ctl ca finish`,
    );
  }
  if (s.roots && s.roots.length > 0) {
    const now = Date.now();
    const soonest = Math.min(...s.roots.map((r) => r.notAfter));
    out.push(`CA root expires in ${Math.floor((soonest - now) / 86_400_000)} days`);
  }
  return out;
}

function _summary(s: CheckSnapshot): string {
  const up = s.nodes.filter((n) => n.health !== null).length;
  const leader = s.nodes.find((n) => n.health?.leader)?.health?.leader ?? "none";
  return `${up}/${s.nodes.length} control nodes answer, leader ${leader}; ${
    s.proxies?.list.length ?? 0
  } proxies report; ${
    Object.keys(s.services ?? {}).length
  } services; ${s.resources.length} resources`;
}
