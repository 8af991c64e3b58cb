/**
 * Request paths as authorization sees them: normalized once, then matched against compiled
 * patterns (exact, `/x/*` prefix, `*` one segment, `**` any depth).
 * @module
 */

/** Longest path evaluated; longer ones are denied as invalid. */
export const MAX_AUTHZ_PATH_CHARS = 8 * 1024;

/**
 * Anything normalization could change: query, fragment, escapes, backslashes, `;` parameters,
 * `//`, dot segments.
 */
const _NOT_PLAIN = /[?#%\\;]|\/\/|\/\.\.?(?:\/|$)/;

/**
 * Escapes that would let one segment mean different paths to different servers: an encoded
 * slash or backslash (a separator to some frameworks, not to others), an encoded `;` (a
 * parameter start to apps that decode before they strip `;params`, so `/admin%3bx/y` would be
 * `/admin/y` to them) and NUL.
 */
const _AMBIGUOUS_ESCAPE = /%(2f|5c|3b|00)/i;

const _UNRESERVED = /%(2[dDeE]|3[0-9]|[46][1-9a-fA-F]|[57][0-9aA]|5[fF]|7[eE])/g;

/**
 * Normalizes a request target for matching: drops query and fragment, takes the path of an
 * absolute-form target, decodes percent-encoded unreserved characters (so `%2e%2e` is `..`),
 * turns `\` into `/` (WHATWG URL parsers, hence many apps, do), drops `;parameters` from every
 * segment (servlet containers resolve `..;` as `..`), collapses `//` and resolves `.`/`..`.
 * Returns null, so the request is denied, for targets that are not a path (`*`, garbage, too
 * long) and for ones holding `%2F`, `%5C`, `%3B` or `%00`, which servers disagree about. The proxy
 * forwards the normalized path, so the app receives exactly what was authorized.
 */
export function normalizePath(target: string): string | null {
  if (target.length > MAX_AUTHZ_PATH_CHARS) return null;
  // Most targets are already normal: skip the split and join on the hot path.
  if (target.charCodeAt(0) === 47) {
    const q = target.indexOf("?");
    const p = q < 0 ? target : target.slice(0, q);
    if (!_NOT_PLAIN.test(p)) return p;
  }
  let p = target;
  const abs = /^https?:\/\/[^/?#]*/i.exec(p);
  if (abs) p = p.slice(abs[0].length) || "/";
  const cut = p.search(/[?#]/);
  if (cut >= 0) p = p.slice(0, cut);
  if (!p.startsWith("/")) return null;
  if (p.includes("%")) {
    if (_AMBIGUOUS_ESCAPE.test(p)) return null;
    p = p.replace(_UNRESERVED, (m) => String.fromCharCode(parseInt(m.slice(1), 16)));
  }
  if (p.includes("\\")) p = p.replaceAll("\\", "/");
  const out: string[] = [];
  const segs = p.split("/");
  for (let i = 1; i < segs.length; i++) {
    const semi = segs[i]!.indexOf(";");
    const s = semi < 0 ? segs[i]! : segs[i]!.slice(0, semi);
    if (s === "" && i < segs.length - 1) continue;
    if (s === ".") continue;
    if (s === "..") {
      out.pop();
      continue;
    }
    out.push(s);
  }
  const lastSeg = segs[segs.length - 1]!;
  const last = lastSeg.includes(";") ? lastSeg.slice(0, lastSeg.indexOf(";")) : lastSeg;
  // A trailing "." or ".." names a directory: keep the trailing slash.
  if ((last === "." || last === "..") && out[out.length - 1] !== "") out.push("");
  return "/" + out.join("/");
}

/** A compiled path pattern. */
export type PathMatcher = (normalizedPath: string) => boolean;

function _escape(s: string): string {
  return s.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Compiles a pattern of an `Authorization` rule:
 * - `/charge`: exactly that path;
 * - `/refund/*` (trailing `/*`): `/refund` and everything below it;
 * - `*` elsewhere: any characters within one segment (`/users/*\/orders`);
 * - `**`: any characters, across segments (`/api/**\/health`).
 * The pattern itself is normalized first, so `/a/./b` and `/a/b` are the same rule.
 */
export function compilePathPattern(pattern: string): PathMatcher {
  if (!pattern.includes("*")) {
    const exact = normalizePath(pattern) ?? pattern;
    // `/admin/` reaches the same handler as `/admin` in most frameworks.
    const slashed = exact.endsWith("/") ? exact : exact + "/";
    return (p) => p === exact || p === slashed;
  }
  if (pattern.endsWith("/*") && !pattern.slice(0, -2).includes("*")) {
    const base = normalizePath(pattern.slice(0, -2) || "/") ?? pattern.slice(0, -2);
    const prefix = base.endsWith("/") ? base : base + "/";
    return (p) => p === base || p.startsWith(prefix);
  }
  let re = "^";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "*") {
      if (pattern[i + 1] === "*") {
        re += ".*";
        i++;
      } else {
        re += "[^/]*";
      }
    } else {
      re += _escape(c);
    }
  }
  const rx = new RegExp(re + "$");
  return (p) => rx.test(p);
}
