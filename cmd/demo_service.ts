/**
 * A demo service for `skein demo`: answers `GET /` with its name and instance, after calling
 * the next service through its proxy's upstream listener when it has one, so one request walks
 * the whole chain (frontend -> orders -> inventory). `GET /healthz` is its health check.
 *
 * Run directly: `deno run --allow-net cmd/demo_service.ts NAME INSTANCE PORT [NEXT_ADDR|-]`. PORT
 * may be 0; the bound port is printed as `listening PORT`. A NEXT_ADDR of `-` is read from the
 * first line of stdin, so the demo can start the app before the proxy whose listener it calls.
 * @module
 */

/** How long a call to the next service may take, in ms. */
export const DEMO_NEXT_TIMEOUT_MS = 5_000;

/** Options of {@linkcode serveDemoService}. */
export interface DemoServiceOptions {
  /** Service name. */
  name: string;
  /** Instance id, shown in answers. */
  instance: string;
  /** Port on 127.0.0.1. */
  port: number;
  /** `host:port` of the upstream listener for the next service, if any (read per request). */
  next?: string | (() => string | undefined);
}

/** Starts the demo service; returns the server. */
export function serveDemoService(o: DemoServiceOptions): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: o.port, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/healthz") return new Response("ok\n");
    const out: Record<string, unknown> = { service: o.name, instance: o.instance };
    const next = typeof o.next === "function" ? o.next() : o.next;
    if (next) {
      try {
        const res = await fetch(`http://${next}/`, {
          signal: AbortSignal.timeout(DEMO_NEXT_TIMEOUT_MS),
        });
        const text = await res.text();
        out.next = res.ok ? JSON.parse(text) : { status: res.status, error: text.trim() };
        if (!res.ok) return Response.json(out, { status: 502 });
      } catch (e) {
        out.next = { error: (e as Error).message };
        return Response.json(out, { status: 502 });
      }
    }
    return Response.json(out);
  });
}

if (import.meta.main) {
  const [name, instance, port, next] = Deno.args;
  if (!name || !instance || !port) {
    console.error("usage: demo_service.ts NAME INSTANCE PORT [NEXT_ADDR|-]");
    Deno.exit(2);
  }
  let nextAddr = next === "-" ? undefined : next;
  const server = serveDemoService({ name, instance, port: Number(port), next: () => nextAddr });
  const stop = () => server.shutdown();
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  console.log(`listening ${server.addr.port}`);
  if (next === "-") {
    let text = "";
    for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      if (text.includes("\n") || text.length > 1024) break;
    }
    nextAddr = text.split("\n")[0]!.trim() || undefined;
    console.log(`next ${nextAddr ?? "(none)"}`);
  }
  await server.finished;
}
