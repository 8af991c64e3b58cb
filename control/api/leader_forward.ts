/**
 * Forwarding a request to the leader's API: one hop at most (a forwarded request reaching
 * another non-leader answers 503), bounded in time, with the original caller named so the
 * leader authorizes as them, never as the forwarding node.
 * @module
 */
import type { Context } from "hono";
import type { Logger } from "../../common/mod.ts";
import { type ApiEnv, FORWARD_HEADER, FORWARDED_PEER_HEADER, INDEX_HEADER } from "./api_env.ts";
import type { ControlBackend } from "./backend.ts";
import { ApiError } from "./errors.ts";
import type { ApiMetrics } from "./metrics.ts";

/** What forwarding needs from the API it runs in. */
export interface ForwardDeps {
  /** The node: its id and whom it knows as leader. */
  backend: ControlBackend;
  /** Counts forwards and their failures. */
  metrics: ApiMetrics;
  /** Where failed forwards are logged. */
  log: Logger;
  /** Sends the request. */
  fetch: (req: Request) => Promise<Response>;
  /** How long a forwarded request may take, before `extraMs`. */
  timeoutMs: number;
}

/** Sends the request to the leader's API once; loops end at the first non-leader. */
export async function forwardToLeader(
  d: ForwardDeps,
  c: Context<ApiEnv>,
  bytes: Uint8Array<ArrayBuffer> | null,
  extraMs = 0,
): Promise<Response> {
  const { backend, metrics, log } = d;
  const via = c.req.header(FORWARD_HEADER);
  if (via) {
    metrics.forwardFailures++;
    throw new ApiError(
      503,
      "no_leader",
      `request forwarded by ${via} reached ${backend.health().node}, which is not the leader either`,
      { forwarded_by: via },
    );
  }
  const leader = backend.leaderApi();
  if (!leader) {
    metrics.forwardFailures++;
    throw new ApiError(
      503,
      "no_leader",
      "no leader is known; the cluster may be electing one",
      {},
    );
  }
  const url = new URL(c.req.url);
  const target = leader.replace(/\/+$/, "") + url.pathname + url.search;
  const headers = new Headers({
    [FORWARD_HEADER]: backend.health().node,
    // The leader believes this only because our own client certificate says we are a control
    // node; it authorizes as the original caller, never as us.
    [FORWARDED_PEER_HEADER]: c.get("peer")?.uri ?? "none",
  });
  for (const h of ["content-type", "authorization", "accept"]) {
    const v = c.req.header(h);
    if (v) headers.set(h, v);
  }
  let res: Response;
  let payload: Uint8Array<ArrayBuffer>;
  try {
    res = await d.fetch(
      new Request(target, {
        method: c.req.method,
        headers,
        body: bytes && bytes.byteLength > 0 ? bytes : undefined,
        redirect: "manual",
        signal: AbortSignal.timeout(d.timeoutMs + extraMs),
      }),
    );
    payload = new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    metrics.forwardFailures++;
    log.warn("forwarding to leader failed", { leader, path: url.pathname, err: e as Error });
    throw new ApiError(
      503,
      "leader_unreachable",
      `forwarding to the leader at ${leader} failed: ${(e as Error).message}`,
      { leader },
    );
  }
  metrics.forwarded++;
  const out = new Headers();
  for (const h of ["content-type", INDEX_HEADER]) {
    const v = res.headers.get(h);
    if (v) out.set(h, v);
  }
  out.set("x-skein-forwarded-to", leader);
  return new Response(payload, { status: res.status, headers: out });
}
