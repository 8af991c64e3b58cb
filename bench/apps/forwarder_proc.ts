/**
 * Runs one HttpForwarder as its own process, for benchmarks and memory tests:
 * `deno run -A bench/apps/forwarder_proc.ts --upstream 127.0.0.1:8080 [--port 0] [--node n]`.
 * Prints `listening <port>`; on SIGTERM/SIGINT drains and exits 0.
 * @module
 */
import { nullLogger } from "../../common/log.ts";
import { HttpForwarder } from "../../mesh/forward/mod.ts";
import { endpointOf } from "../../tests/mesh_hotpath/static_router.ts";
import { staticRouter } from "../../tests/mesh_hotpath/static_router.ts";

function arg(name: string, dflt: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i === -1 ? dflt : Deno.args[i + 1] ?? dflt;
}

const upstream = endpointOf(arg("upstream", "127.0.0.1:8080"));
// --reuse-port lets several processes share one port (SO_REUSEPORT), one event loop each.
const listener = Deno.listen({
  hostname: "127.0.0.1",
  port: Number(arg("port", "0")),
  reusePort: Deno.args.includes("--reuse-port"),
});
const fwd = new HttpForwarder(listener, {
  node: arg("node", "bench"),
  listener: { name: "bench", protocol: "http" },
  router: staticRouter({ cluster: "app", endpoints: [upstream] }),
  logger: nullLogger,
});
const stop = async () => {
  await fwd.drain(2_000);
  Deno.exit(0);
};
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);
await Deno.stdout.write(new TextEncoder().encode(`listening ${fwd.addr.port}\n`));
