/**
 * Server spans for the control API's calls: the W3C trace context of the caller is continued
 * (a proxy's or `skein ctl`'s), a trace is started at the configured sampling otherwise, and
 * the span is named after the matched route. Not sampled: no span object at all.
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import type { SpanSink } from "../../common/trace/span_sink.ts";
import {
  parseB3,
  parseTraceparent,
  sampleRoot,
  type Sampling,
} from "../../common/trace/trace_context.ts";

/** What the API traces with; `sink` is null until the tracer has loaded. */
export interface ApiTracing {
  /** The tracer, once loaded. */
  sink(): SpanSink | null;
  /** Sampling of calls arriving without a trace. */
  sampling: Sampling;
}

/** Hono middleware making a server span per sampled API call. */
export function traceApiCalls(t: ApiTracing): MiddlewareHandler {
  return async function traceCall(c: Context, next) {
    const sink = t.sink();
    if (sink === null) return await next();
    const tp = c.req.header("traceparent");
    let parent = tp === undefined ? null : parseTraceparent(tp, null);
    let sampled: boolean;
    if (parent !== null) sampled = parent.sampled;
    else {
      const b3 = parseB3((n) => c.req.header(n) ?? null);
      sampled = b3?.sampled ?? sampleRoot(t.sampling, Math.random);
      if (b3 !== null) parent = { ...b3, sampled };
    }
    if (!sampled) return await next();
    const span = sink.start("server", `${c.req.method} ${c.req.path}`, parent, {
      "http.request.method": c.req.method,
      "url.path": c.req.path,
      "server.address": c.req.header("host") ?? "",
    }, Date.now());
    let failed = true;
    try {
      await next();
      failed = false;
    } finally {
      const routes = matchedRoutes(c);
      const route = routes.length > 1 ? routes.at(-1)?.path ?? "unmatched" : "unmatched";
      const status = failed ? 500 : c.res.status;
      span.end(
        {
          "http.route": route,
          "http.response.status_code": status,
          ...(status >= 500 ? { error: true } : {}),
        },
        status >= 500,
        Date.now(),
        `${c.req.method} ${route}`,
      );
    }
  };
}
