/**
 * The backend app used by the data-plane tests and benchmark: a small Deno.serve app.
 *
 * Routes: `GET /` tiny body; `POST /echo` streams the body back; `POST /sink` counts the body;
 * `GET /bytes?n=N[&chunked=1]` streams N bytes; `GET /slow?ms=N`; `GET /headers` echoes request
 * headers as JSON; `GET /ws` WebSocket echo. Run directly it prints `listening <port>`.
 * @module
 */

/** Bytes per chunk when the backend streams generated bodies. */
const STREAM_CHUNK_BYTES = 64 * 1024;

/** A running backend. */
export interface Backend {
  /** The bound port. */
  port: number;
  /** Distinct client connections seen (by remote port). */
  connections(): number;
  /** Stops the server. */
  close(): Promise<void>;
}

/** Starts the backend on 127.0.0.1 (port 0 picks one). */
export function startBackend(port = 0): Promise<Backend> {
  const remotePorts = new Set<number>();
  const payload = new Uint8Array(STREAM_CHUNK_BYTES).fill(120);
  return new Promise((resolve) => {
    const server = Deno.serve({
      hostname: "127.0.0.1",
      port,
      onListen: () => {},
    }, async (req, info) => {
      remotePorts.add(info.remoteAddr.port);
      const url = new URL(req.url);
      switch (url.pathname) {
        case "/":
          return new Response("ok");
        case "/echo":
          return new Response(req.body, {
            headers: {
              "content-type": req.headers.get("content-type") ?? "application/octet-stream",
            },
          });
        case "/sink": {
          let n = 0;
          if (req.body) { for await (const c of req.body) n += c.length; }
          return new Response(String(n));
        }
        case "/bytes": {
          const total = Number(url.searchParams.get("n") ?? "0");
          let sent = 0;
          const body = new ReadableStream<Uint8Array>({
            pull(ctl) {
              if (sent >= total) return ctl.close();
              const n = Math.min(STREAM_CHUNK_BYTES, total - sent);
              sent += n;
              ctl.enqueue(n === payload.length ? payload : payload.subarray(0, n));
            },
          });
          const headers: Record<string, string> = {};
          if (url.searchParams.get("chunked") !== "1") headers["content-length"] = String(total);
          return new Response(body, { headers });
        }
        case "/slow": {
          const ms = Number(url.searchParams.get("ms") ?? "1000");
          await new Promise((r) => setTimeout(r, ms));
          return new Response("slow");
        }
        case "/headers":
          return Response.json(Object.fromEntries(req.headers));
        case "/ws": {
          const { socket, response } = Deno.upgradeWebSocket(req);
          socket.onmessage = (e) => socket.send(e.data);
          return response;
        }
        default:
          return new Response("not found", { status: 404 });
      }
    });
    const addr = server.addr as Deno.NetAddr;
    resolve({
      port: addr.port,
      connections: () => remotePorts.size,
      close: async () => {
        await server.shutdown();
      },
    });
  });
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--port");
  const b = await startBackend(i === -1 ? 0 : Number(Deno.args[i + 1]));
  await Deno.stdout.write(new TextEncoder().encode(`listening ${b.port}\n`));
}
