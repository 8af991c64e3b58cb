/**
 * The catalog route: `GET /v1/catalog`, whole or as a delta, and blocking until the index
 * passes the caller's when `?index` is given. Answers are encoded once per state index and
 * shared by every watcher; watchers are bounded per client address and per node.
 * @module
 */
import { Hono } from "hono";
import { parseDuration } from "../../config/mod.ts";
import { TooManyWatchersError } from "../registry/mod.ts";
import type { ApiCore } from "./api_core.ts";
import { type ApiEnv, DEFAULT_BLOCKING_WAIT_MS, INDEX_HEADER } from "./api_env.ts";
import { CATALOG_DELTA_HEADER, type CatalogFeed } from "./catalog_feed.ts";
import { ApiError } from "./errors.ts";
import { CatalogQuery, parseQuery } from "./params.ts";

/**
 * Blocking catalog queries one client address may have waiting on a node at once, unless the
 * caller is a proxy with its mesh certificate (proxies behind one NAT share an address).
 */
export const MAX_WATCHERS_PER_ADDRESS = 256;

/** The catalog route, serving from `catalogFeed` (whose stats `/metrics` shows); blocking waits are capped at `maxWaitMs`. */
export function catalogRoutes(
  k: ApiCore,
  catalogFeed: CatalogFeed,
  maxWaitMs: number,
): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  const { backend } = k;

  app.get("/v1/catalog", async (c) => {
    const q = parseQuery(c, CatalogQuery);
    let waitMs = DEFAULT_BLOCKING_WAIT_MS;
    if (q.wait !== undefined) {
      const ms = parseDuration(q.wait);
      if (ms === null) {
        throw new ApiError(
          400,
          "invalid_request",
          `query.wait: expected a duration like "30s", got ${JSON.stringify(q.wait)}`,
          {
            issues: [{ path: "wait", message: 'expected a duration like "30s"' }],
          },
        );
      }
      waitMs = ms;
    }
    waitMs = Math.min(waitMs, maxWaitMs);
    const blocking = q.index !== undefined;
    const fwd = await k.consistentRead(c, q.stale, blocking ? waitMs : 0);
    if (fwd) return fwd;
    if (blocking && backend.state().index <= q.index!) {
      // One host may hold only so many of the node's watcher slots; a follower forwarding its
      // clients' queries (a control principal) is not one host, nor are proxies with their mesh
      // certificates (a fleet behind one NAT address): the node's total cap bounds those.
      const kind = c.get("principal").kind;
      const addr = kind === "control" || kind === "proxy"
        ? null
        : c.env?.remoteAddr?.hostname ?? null;
      const held = addr === null ? 0 : watchersByAddress.get(addr) ?? 0;
      if (held >= MAX_WATCHERS_PER_ADDRESS) {
        throw new ApiError(
          429,
          "too_many_watchers",
          `${addr} holds ${held} blocking queries already`,
          { limit: MAX_WATCHERS_PER_ADDRESS },
        );
      }
      if (addr !== null) watchersByAddress.set(addr, held + 1);
      // A proxy's stale watch also ends when this node passes the staleness bound.
      const bound = q.stale ? k.stale.watch(c) : undefined;
      try {
        const signal = bound === undefined
          ? c.req.raw.signal
          : AbortSignal.any([c.req.raw.signal, bound.signal]);
        await backend.watcher.wait(q.index!, waitMs, signal);
      } catch (e) {
        if (e instanceof TooManyWatchersError) {
          throw new ApiError(429, "too_many_watchers", e.message, { limit: e.limit });
        }
        throw e;
      } finally {
        bound?.release();
        if (addr !== null) {
          const n = (watchersByAddress.get(addr) ?? 1) - 1;
          if (n > 0) watchersByAddress.set(addr, n);
          else watchersByAddress.delete(addr);
        }
      }
    }
    if (q.stale) k.stale.check(c);
    const feed = currentFeed();
    // A proxy that asks for a delta gets only what changed since the index it holds, if this
    // node served that index; anyone else (older proxies, operators) gets the whole catalog.
    const wantsDelta = blocking && c.req.header(CATALOG_DELTA_HEADER) === "1";
    const bytes = (wantsDelta ? feed.delta(q.index!) : null) ?? feed.full();
    c.header(INDEX_HEADER, String(feed.index));
    c.header("content-type", "application/json");
    // One encoded buffer per index, shared by every answer: a string would be encoded again for
    // each of a thousand watchers woken by one write.
    return c.body(bytes as Uint8Array<ArrayBuffer>);
  });

  /** Blocking catalog queries waiting now, by client address. */
  const watchersByAddress = new Map<string, number>();
  // The catalog answers are built once per state index: a write wakes every blocking query at
  // once, and each building and serialising the whole catalog for itself blocked the event loop
  // for seconds with a fleet's worth of watchers (and could run the node out of memory).
  const currentFeed = () => catalogFeed.follow(backend.state());

  return app;
}
