/**
 * The dashboard's routes on the control API: `GET /ui/` and its static files (no token: they
 * hold no data) and `GET /v1/dashboard`, the data the page draws (a read token): services
 * and instances from the registry, golden signals and call edges from the proxies' reports,
 * recent denials, CA and proxy certificate expiry.
 * @module
 */
import { Hono } from "hono";
import type { RegistryState } from "../registry/mod.ts";
import type { DashboardWindow } from "./window.ts";

/** The static files served under `/ui/`, with their content types. */
export const STATIC_FILES: Readonly<Record<string, string>> = {
  "index.html": "text/html; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
  "charts.js": "text/javascript; charset=utf-8",
  "style.css": "text/css; charset=utf-8",
};

/** Where the static files live (embed this folder when compiling). */
export const STATIC_DIR = new URL("./static/", import.meta.url);

const _cache = new Map<string, Uint8Array<ArrayBuffer>>();

async function _file(name: string): Promise<Uint8Array<ArrayBuffer>> {
  let bytes = _cache.get(name);
  if (bytes === undefined) {
    bytes = await Deno.readFile(new URL(name, STATIC_DIR));
    _cache.set(name, bytes);
  }
  return bytes;
}

/**
 * The part of the control node the dashboard reads: the registry as applied here. A narrow
 * interface rather than the API's backend, so the dashboard does not depend on the API that
 * mounts it.
 */
export interface DashboardSource {
  /** The registry state machine as applied on this node. */
  state(): RegistryState;
}

/** What the dashboard routes read. */
export interface DashboardDeps {
  backend: DashboardSource;
  window: DashboardWindow;
  /** Wall clock, epoch ms. */
  now: () => number;
}

/** The `/v1/dashboard` body at `now`. */
export function dashboardData(d: DashboardDeps): Record<string, unknown> {
  const now = d.now();
  const st = d.backend.state();
  const ca = st.ca();
  const td = ca?.trustDomain ?? null;
  const id = (svc: string) => td === null ? null : `spiffe://${td}/svc/${svc}`;
  const catalog = st.catalog();
  return {
    now,
    trust_domain: td,
    services: Object.entries(catalog.services).map(([name, instances]) => ({
      name,
      identity: id(name),
      instances: instances.map((i) => ({
        id: i.id,
        node: i.node,
        address: `${i.address}:${i.port}`,
        zone: i.zone,
        version: i.version,
        capabilities: i.capabilities,
        health: i.health,
      })),
    })),
    signals: d.window.signals(now),
    edges: d.window.edges(now).map((e) => ({
      ...e,
      source_identity: id(e.source),
      destination_identity: id(e.destination),
    })),
    denials: d.window.denials(),
    certs: {
      ca: (ca?.roots ?? []).map((r) => ({
        id: r.id,
        generation: r.generation,
        active: r.id === ca!.activeRootId,
        not_after: r.notAfter,
      })),
      proxies: d.window.certs(),
    },
  };
}

/** The dashboard routes, as a sub-app the control API mounts at its root. */
export function dashboardRoutes(d: DashboardDeps): Hono {
  const app = new Hono();
  app.get("/ui", (c) => c.redirect("/ui/", 301));
  app.get("/ui/", (c) => _serve(c.req.method, "index.html"));
  app.get("/ui/:file", (c) => _serve(c.req.method, c.req.param("file")));
  app.get("/v1/dashboard", (c) => c.json(dashboardData(d)));
  return app;
}

async function _serve(method: string, name: string): Promise<Response> {
  const type = Object.hasOwn(STATIC_FILES, name) ? STATIC_FILES[name]! : undefined;
  if (type === undefined) {
    return Response.json({
      error: { code: "not_found", message: `no file ${name} in /ui/`, details: {} },
    }, { status: 404 });
  }
  const body = await _file(name);
  return new Response(method === "HEAD" ? null : body, {
    headers: {
      "content-type": type,
      // Everything the page loads comes from here; the token never leaves for elsewhere.
      "content-security-policy":
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      "cache-control": "no-cache",
    },
  });
}
