/**
 * What an ingress listener does with one request head (pure): the mesh service its routes
 * choose, or a local answer — 404 `no_route`, 400 for a target no route can be read from, or
 * on a `redirect_https` listener the 308 to the same URL over HTTPS.
 *
 * Routes match the path as the app will read it: normalized like `Authorization` paths (dot
 * segments resolved, `//` collapsed, escaped unreserved characters decoded), and the request
 * is forwarded with that path. Matching the raw bytes instead would let `/public/../private`
 * through a `/public` route to an app that resolves it to `/private`.
 * @module
 */
import { normalizePath } from "../authz/mod.ts";
import { ProxyError } from "../forward/mod.ts";
import { headerValue, markHopByHop, type RequestHead } from "../http1/mod.ts";
import { TCP_TUNNEL_UPGRADE } from "../tcp/mod.ts";
import { IngressRoutes, normalizeHost } from "./routes.ts";

/** Listener name prefix of ingress listeners (`ingress:0`, `ingress:1`, ...). */
export const INGRESS_LISTENER_PREFIX = "ingress:";

/** The listener name of the `i`-th `ingress` entry. */
export function ingressListenerName(i: number): string {
  return INGRESS_LISTENER_PREFIX + i;
}

/** One ingress listener's routing, as the router keeps it. */
export class IngressTable {
  /** The compiled routes (empty for a redirect listener). */
  readonly routes: IngressRoutes;
  /** On a redirect listener: the HTTPS port clients are sent to. */
  readonly redirectPort: number | null;

  /** Builds the table of one `ingress` entry. */
  constructor(l: {
    routes: readonly { host?: string; path_prefix: string; service: string }[];
    redirect_https?: number;
  }) {
    this.routes = new IngressRoutes(l.routes);
    this.redirectPort = l.redirect_https ?? null;
  }

  /** The service `head` goes to, or the local answer. */
  decide(head: RequestHead): string | ProxyError {
    // The listener states the scheme itself (its `clientLines`): a client's claim is dropped.
    markHopByHop(head, "x-forwarded-proto");
    const t = splitTarget(head.target, head.host);
    if (t === null) {
      return new ProxyError(400, "bad_request", "expected an origin-form or absolute-form target");
    }
    if (this.redirectPort !== null) return this.#redirect(t.host, t.path);
    if (head.upgrade && _asksTunnel(headerValue(head, "upgrade"))) {
      // The mesh's own tunnel would hand an outside client raw TCP to the routed service,
      // past every path this listener routes by.
      return new ProxyError(
        400,
        "bad_request",
        `Upgrade: ${TCP_TUNNEL_UPGRADE} is the mesh's own protocol, not offered outside it`,
      );
    }
    const path = normalizePath(t.path);
    if (path === null) {
      return new ProxyError(
        400,
        "bad_request",
        "a path with an encoded /, \\, ; or NUL (servers read it differently), or too long",
      );
    }
    const svc = this.routes.match(t.host, path);
    if (svc === null) {
      return new ProxyError(404, "no_route", "no ingress route for this host and path");
    }
    // The app gets the path that was routed (normalizePath returns its input when unchanged).
    if (path !== t.path) {
      const want = t.origin + path + queryOf(t.path);
      if (want !== head.target) {
        head.target = want;
        head.targetRewritten = true;
      }
    }
    return svc;
  }

  #redirect(host: string | null, path: string): ProxyError {
    const h = normalizeHost(host);
    if (h === null) {
      return new ProxyError(400, "bad_request", "a redirect to HTTPS needs a Host naming a host");
    }
    const port = this.redirectPort === 443 ? "" : `:${this.redirectPort}`;
    // `path` comes from the parsed request line: visible ASCII only, no CR/LF to inject.
    const location = `https://${h}${port}${path}`;
    return new ProxyError(
      308,
      "https_redirect",
      `moved to ${location}`,
      `location: ${location}\r\n`,
    );
  }
}

/**
 * The host and origin-form path of a request target: an origin-form target with `Host`, or an
 * absolute-form one (whose authority replaces `Host`, RFC 9112 §3.2.2; `origin` is its
 * `scheme://authority`, "" for origin-form). Null for the asterisk and authority forms, which
 * name no resource to route.
 */
export function splitTarget(
  target: string,
  host: string | null,
): { host: string | null; path: string; origin: string } | null {
  if (target.charCodeAt(0) === 47 /* / */) return { host, path: target, origin: "" };
  const m = /^(https?:\/\/([^/?#]*))(.*)$/i.exec(target);
  if (m === null) return null;
  const authority = m[2]!;
  // Userinfo names no host: `http://evil@shop/` is shop.
  const at = authority.lastIndexOf("@");
  const rest = m[3]!;
  return {
    host: at < 0 ? authority : authority.slice(at + 1),
    path: rest === "" ? "/" : rest.startsWith("/") ? rest : `/${rest}`,
    origin: m[1]!,
  };
}

/** The query of an origin-form target (from "?", without a fragment), or "". */
export function queryOf(path: string): string {
  const q = path.indexOf("?");
  if (q < 0) return "";
  const h = path.indexOf("#", q);
  return h < 0 ? path.slice(q) : path.slice(q, h);
}

/** Whether an `Upgrade` field value lists the mesh's TCP tunnel protocol. */
function _asksTunnel(v: string | null): boolean {
  if (v === null) return false;
  return v.split(",").some((p) => p.trim().toLowerCase().startsWith(TCP_TUNNEL_UPGRADE));
}
