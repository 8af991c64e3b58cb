/**
 * The admin listener: `/metrics` (Prometheus text), `/live`, `/ready`, `/config` and
 * `/endpoints`.
 * Not the hot path, so it uses `Deno.serve`.
 * @module
 */
import { PROMETHEUS_CONTENT_TYPE } from "../../common/metrics.ts";

/** What the admin pages read from the running proxy (worker state arrives asynchronously). */
export interface AdminSource {
  /** This proxy's node name, sent as `x-skein-proxy`. */
  node: string;
  /** The Prometheus exposition. */
  metrics(): string | Promise<string>;
  /**
   * Whether the process is alive: it answers, and every data plane runs (or was restarted).
   * A service manager restarts the proxy when this fails; `/ready` says whether to send traffic.
   */
  live(): { live: boolean; [k: string]: unknown };
  /** Whether the proxy serves traffic, and why not. */
  ready(): { ready: boolean; reasons: string[]; [k: string]: unknown };
  /** The effective configuration (no secrets). */
  config(): unknown;
  /** Per-destination endpoint state. */
  endpoints(): unknown;
}

/** Builds the admin request handler. */
export function adminHandler(src: AdminSource): (req: Request) => Promise<Response> {
  const headers = { "x-skein-proxy": src.node };
  const json = (v: unknown, status = 200) =>
    new Response(JSON.stringify(v, null, 2) + "\n", {
      status,
      headers: { ...headers, "content-type": "application/json" },
    });
  return async function admin(req: Request): Promise<Response> {
    const path = new URL(req.url).pathname;
    if (req.method !== "GET" && req.method !== "HEAD") {
      return json({ error: { code: "method_not_allowed", message: `${req.method} ${path}` } }, 405);
    }
    switch (path) {
      case "/metrics":
        return new Response(await src.metrics(), {
          headers: { ...headers, "content-type": PROMETHEUS_CONTENT_TYPE },
        });
      case "/live": {
        const l = src.live();
        return json(l, l.live ? 200 : 503);
      }
      case "/ready": {
        const r = src.ready();
        return json(r, r.ready ? 200 : 503);
      }
      case "/config":
        return json(await src.config());
      case "/endpoints":
        return json(await src.endpoints());
      default:
        return json({
          error: {
            code: "not_found",
            message: `no admin page ${path}; try /metrics, /live, /ready, /config, /endpoints`,
          },
        }, 404);
    }
  };
}
