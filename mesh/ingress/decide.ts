/**
 * What an ingress listener does with one request head (pure): the mesh service its routes
 * choose, or a local answer — 404 `no_route`, 400 for a target no route can be read from, or
 * on a `redirect_https` listener the 308 to the same URL over HTTPS.
 * @module
 */
import { ProxyError } from "../forward/mod.ts";
import { markHopByHop, type RequestHead } from "../http1/mod.ts";
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
    const svc = this.routes.match(t.host, t.path);
    if (svc === null) {
      return new ProxyError(404, "no_route", "no ingress route for this host and path");
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
 * absolute-form one (whose authority replaces `Host`, RFC 9112 §3.2.2). Null for the
 * asterisk and authority forms, which name no resource to route.
 */
export function splitTarget(
  target: string,
  host: string | null,
): { host: string | null; path: string } | null {
  if (target.charCodeAt(0) === 47 /* / */) return { host, path: target };
  const m = /^https?:\/\/([^/?#]*)(.*)$/i.exec(target);
  if (m === null) return null;
  const authority = m[1]!;
  // Userinfo names no host: `http://evil@shop/` is shop.
  const at = authority.lastIndexOf("@");
  const rest = m[2]!;
  return {
    host: at < 0 ? authority : authority.slice(at + 1),
    path: rest === "" ? "/" : rest.startsWith("/") ? rest : `/${rest}`,
  };
}
