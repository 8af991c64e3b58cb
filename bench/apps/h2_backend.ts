/**
 * The h2c app of `bench/h2_bench.ts`: answers every request `200 ok` over HTTP/2 with prior
 * knowledge. `deno run -A bench/apps/h2_backend.ts --port N`
 * @module
 */
import http2 from "node:http2";

const i = Deno.args.indexOf("--port");
const port = i >= 0 ? Number(Deno.args[i + 1]) : 0;
const server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
server.on("stream", (stream: http2.ServerHttp2Stream) => {
  stream.on("error", () => {});
  stream.respond({ ":status": 200, "content-type": "text/plain" });
  stream.end("ok");
});
server.listen(port, "127.0.0.1");
