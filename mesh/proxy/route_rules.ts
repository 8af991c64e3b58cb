/**
 * A `Route` resource compiled for the request path: every rule's match, backend weights,
 * sticky hashing and fault settings are worked out once per catalog update, so a request
 * pays only the comparisons of the rules it is tested against (none without a Route).
 * Pure logic: no I/O, no zod (workers receive resources as plain data).
 * @module
 */
import { headerValue, type RequestHead } from "../http1/mod.ts";
// The ring-hash balancer's hash: a sticky key spreads the same way over versions and endpoints.
import { hashString } from "../balance/ring_hash.ts";
import type { Route } from "./destination_types.ts";
import { compileFault, type RuleFault } from "./fault.ts";

/** One compiled rule of a Route. */
export interface RouteRule {
  /** The `route` metric label (`rule-N`). */
  readonly label: string;
  /** Whether the request is selected by this rule's `match`. */
  matches(head: RequestHead): boolean;
  /** The backend version for this request (undefined = any version). */
  version(head: RequestHead, random: () => number): string | undefined;
  /** Every version the rule's backends name. */
  readonly versions: readonly (string | undefined)[];
  /** The rule's fault injection, or null. */
  readonly fault: RuleFault | null;
  /** Where a share of the selected requests is copied to, or null. */
  readonly mirror: RuleMirror | null;
}

/** A rule's `mirror`: one of `version` (same service) or `service`, and the share copied. */
export interface RuleMirror {
  /** A version of the same service. */
  readonly version?: string;
  /** Another service. */
  readonly service?: string;
  /** Percent of the selected requests copied. */
  readonly percent: number;
}

type _HeaderCond = readonly [name: string, value: string | null];

/** Compiles a Route (or none) into its rules, in order: the first rule that matches wins. */
export function compileRoute(r: Route | undefined): RouteRule[] {
  return (r?.rules ?? []).map((rule, i) => {
    const m = rule.match;
    const method = m?.method?.toUpperCase();
    const path = m?.path;
    const prefix = m?.path_prefix;
    const headers: _HeaderCond[] = Object.entries(m?.headers ?? {}).map(([k, v]) => [
      k.toLowerCase(),
      typeof v === "string" ? v : null,
    ]);
    const needPath = path !== undefined || prefix !== undefined;
    const versions: (string | undefined)[] = [];
    const cumulative: number[] = [];
    let total = 0;
    for (const b of rule.backends) {
      total += b.weight;
      versions.push(b.version);
      cumulative.push(total);
    }
    const hashHeader = rule.hash_on?.header.toLowerCase();
    const fault = compileFault(rule.fault);
    return {
      label: `rule-${i}`,
      versions,
      fault,
      mirror: rule.mirror === undefined ? null : { ...rule.mirror },
      matches(head: RequestHead): boolean {
        if (method !== undefined && method !== head.method) return false;
        if (needPath) {
          const p = pathOf(head.target);
          if (path !== undefined && p !== path) return false;
          if (prefix !== undefined && !p.startsWith(prefix)) return false;
        }
        for (const [k, v] of headers) {
          const got = headerValue(head, k);
          if (got === null || (v !== null && got !== v)) return false;
        }
        return true;
      },
      version(head: RequestHead, random: () => number): string | undefined {
        if (versions.length === 1) return versions[0];
        let x: number;
        const key = hashHeader === undefined ? null : headerValue(head, hashHeader);
        // The same key always lands on the same point of [0, total): one version per user.
        x = key === null ? random() * total : (hashString(key) / 0x1_0000_0000) * total;
        if (x >= total) x = 0;
        for (let j = 0; j < cumulative.length; j++) {
          if (x < cumulative[j]!) return versions[j];
        }
        return versions.at(-1);
      },
    };
  });
}

let _lastTarget = "";
let _lastPath = "";

/** The path of a request-target, without the query (absolute form keeps only its path). */
export function pathOf(target: string): string {
  // Rules with path conditions ask about the same request one after another.
  if (target === _lastTarget) return _lastPath;
  _lastTarget = target;
  return _lastPath = _pathOf(target);
}

function _pathOf(target: string): string {
  let t = target;
  if (!t.startsWith("/")) {
    const i = t.indexOf("/", t.indexOf("//") + 2);
    t = i < 0 ? "/" : t.slice(i);
  }
  const q = t.indexOf("?");
  return q < 0 ? t : t.slice(0, q);
}
