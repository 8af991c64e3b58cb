/**
 * `skein ctl apply` refuses a Route naming a version that no instance of its service declares
 * while the service has instances (a typo would send the rule's share to 503s). A service
 * with no instance yet may get its Route first: nothing can be checked then.
 * @module
 */
import { type ConfigIssue, type Resource, resourcePosition } from "../../config/mod.ts";

/** The versions a Route names, with where each is written. */
export function routeVersions(
  r: Resource,
): { path: (string | number)[]; version: string }[] {
  if (r.kind !== "Route") return [];
  const out: { path: (string | number)[]; version: string }[] = [];
  r.rules.forEach((rule, i) => {
    rule.backends.forEach((b, j) => {
      if (b.version !== undefined) {
        out.push({ path: ["rules", i, "backends", j, "version"], version: b.version });
      }
    });
    if (rule.mirror?.version !== undefined) {
      out.push({ path: ["rules", i, "mirror", "version"], version: rule.mirror.version });
    }
  });
  return out;
}

/**
 * Issues (with their lines in `text`) for the Route versions no instance declares;
 * `versionsOf` gives the versions a service's instances declare (an empty set: none yet).
 */
export async function routeVersionIssues(
  file: string,
  text: string,
  resources: readonly Resource[],
  versionsOf: (service: string) => Promise<ReadonlySet<string> | null>,
): Promise<ConfigIssue[]> {
  const issues: ConfigIssue[] = [];
  for (let i = 0; i < resources.length; i++) {
    const r = resources[i]!;
    const named = routeVersions(r);
    if (named.length === 0 || r.kind !== "Route") continue;
    const known = await versionsOf(r.service);
    if (known === null || known.size === 0) continue;
    for (const n of named) {
      if (known.has(n.version)) continue;
      issues.push({
        file,
        ...resourcePosition(text, i, n.path),
        path: n.path.join("."),
        message: `no instance of ${r.service} declares version ${JSON.stringify(n.version)} (${
          declaredVersions(known)
        })`,
      });
    }
  }
  return issues;
}

/**
 * What the instances declare, for the error: an instance without `version:` declares "",
 * which a user would not recognise as a version, so it is named in words with its fix.
 */
export function declaredVersions(known: ReadonlySet<string>): string {
  const named = [...known].filter((v) => v !== "").map((v) => JSON.stringify(v)).sort();
  const fix = "set `version:` on the service in the proxy's proxy.yaml";
  if (named.length === 0) return `its instances declare no version; ${fix}`;
  return known.has("")
    ? `${named.join(", ")} declared, other instances declare none`
    : `${named.join(", ")} do`;
}
