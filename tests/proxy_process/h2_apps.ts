/**
 * Apps for the HTTP/2 process tests: one port serving both HTTP/1.1 and h2c with prior
 * knowledge (it looks at the first bytes, as the proxy does), answering with trailers and
 * counting what reached it by protocol.
 * @module
 */
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";

/** A dual-protocol app. */
export interface DualApp {
  port: number;
  /** Requests that arrived as HTTP/2, by path. */
  h2: string[];
  /** Requests that arrived as HTTP/1.1, by path. */
  h1: string[];
  /** The last h2 request headers seen. */
  lastH2Headers: http2.IncomingHttpHeaders | null;
  close(): Promise<void>;
}

const _PREFACE = "PRI * HTTP/2.0";

/**
 * Starts an app on 127.0.0.1 answering `<name> <path>` (POST: `<name> echo <body>`), with the
 * trailer `x-app-trailer: <name>` on HTTP/2; `/healthz` answers 200 on both; h2 `/hang` is
 * never answered (and the app keeps no deadline).
 */
export async function startDualApp(name: string): Promise<DualApp> {
  const app: DualApp = { port: 0, h2: [], h1: [], lastH2Headers: null, close: async () => {} };
  const h2server = http2.createServer();
  h2server.on("stream", (stream: http2.ServerHttp2Stream, headers) => {
    stream.on("error", () => {});
    const path = String(headers[":path"]);
    if (path !== "/healthz") {
      app.h2.push(path);
      app.lastH2Headers = headers;
    }
    let body = "";
    stream.on("data", (c) => body += c);
    stream.on("end", () => {
      // Never answered: only a deadline (the caller's, or a proxy's) ends it.
      if (path === "/hang") return;
      stream.respond({ ":status": 200, "content-type": "text/plain", "x-app": name }, {
        waitForTrailers: true,
      });
      stream.on("wantTrailers", () => stream.sendTrailers({ "x-app-trailer": name }));
      stream.end(headers[":method"] === "POST" ? `${name} echo ${body}` : `${name} ${path}`);
    });
  });
  const h1server = http.createServer((req, res) => {
    if (req.url !== "/healthz") app.h1.push(req.url ?? "");
    let body = "";
    req.on("data", (c) => body += c);
    req.on("end", () => {
      res.writeHead(200, { "content-type": "text/plain", "x-app": name });
      res.end(req.method === "POST" ? `${name} echo ${body}` : `${name} ${req.url}`);
    });
  });
  const sockets = new Set<net.Socket>();
  const tcp = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    socket.once("data", (first: Uint8Array) => {
      socket.pause();
      socket.unshift(first);
      const isH2 = new TextDecoder().decode(first.subarray(0, _PREFACE.length)) === _PREFACE;
      (isH2 ? h2server : h1server).emit("connection", socket);
      socket.resume();
    });
  });
  await new Promise<void>((r) => tcp.listen(0, "127.0.0.1", () => r()));
  app.port = (tcp.address() as net.AddressInfo).port;
  app.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => tcp.close(() => r()));
  };
  return app;
}

/** Runs a command to the end; its exit code, stdout and stderr. */
export async function run(
  cmd: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Whether `cmd` can be run here. */
export async function have(cmd: string): Promise<boolean> {
  try {
    return (await run(cmd, ["--version"])).code === 0;
  } catch {
    return false;
  }
}

/** An HTTP/1.1-only app: the versions of what reached it, and a chunked answer with a trailer. */
export interface H1App {
  port: number;
  /** `HTTP/<version> <method> <path>` of each request (not /healthz). */
  seen: string[];
  close(): Promise<void>;
}

/** Starts an HTTP/1.1-only app answering `<name> <path>` with the trailer `x-app-trailer`. */
export async function startH1App(name: string): Promise<H1App> {
  const app: H1App = { port: 0, seen: [], close: async () => {} };
  const server = http.createServer((req, res) => {
    if (req.url !== "/healthz") app.seen.push(`HTTP/${req.httpVersion} ${req.method} ${req.url}`);
    let body = "";
    req.on("data", (c) => body += c);
    req.on("end", () => {
      res.writeHead(200, { "content-type": "text/plain", "x-app": name, trailer: "x-app-trailer" });
      res.write(req.method === "POST" ? `${name} echo ${body}` : `${name} ${req.url}`);
      res.addTrailers({ "x-app-trailer": name });
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  app.port = (server.address() as net.AddressInfo).port;
  app.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return app;
}
