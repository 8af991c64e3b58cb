/**
 * `deno task bench`: runs skein beside its peers (etcd for the control plane, HAProxy for the
 * data plane) in one run on this machine and prints the figures and ratios.
 *
 * `deno task bench control`, `deno task bench mesh`, `deno task bench ingress` (HTTPS into a
 * gateway and one mTLS hop, beside HAProxy; bench/ingress_bench.ts) or `deno task bench footprint` runs one part
 * (footprint: RSS and PSS of skein's proxies beside HAProxy's, idle and under 32 connections,
 * per extra worker and the control node idle; see bench/footprint.ts). Not part of the default
 * run: `deno task bench soak [--minutes 30]`, `deno task bench fleet` (root only: the fleet
 * tests' long profile), `deno task bench capacity` (the registry at fleet size with proxies'
 * heartbeats and a rack failure) and `deno task bench scale` (catalog propagation to simulated
 * proxies) and `deno task bench h2` (h2load through two hops: HAProxy's h2 path beside skein's). skein speaks only TLS, so by
 * default the peers do too (like for like): etcd with TLS and client certificates on its client
 * and peer ports (its wrk figure from a second cluster without client certificate auth; see
 * bench/control_bench.ts, which prints what each row's load generator sends), HAProxy with mTLS
 * on the proxy-to-proxy hop. `--plain-etcd` runs etcd over plain HTTP instead;
 * `--plaintext-mesh` measures HAProxy and the bare forwarder without TLS. `--route` puts a Route of
 * two weighted backends in force for the skein pair; `--observe` runs a second skein pair with
 * an access log and 1% tracing (`--observe-log`, `--observe-trace`: one of the two) in place of
 * the no-mux pair, in the same rounds as the first pair with both off, and prints their ratio.
 * @module
 */

const named = Deno.args.filter((a, i) => !a.startsWith("--") && Deno.args[i - 1] !== "--minutes");
const parts = named.length > 0 ? named : ["control", "mesh", "ingress", "footprint"];
const tls = !Deno.args.includes("--plain-etcd");
const meshTls = !Deno.args.includes("--plaintext-mesh");

async function _which(cmd: string): Promise<boolean> {
  try {
    const out = await new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" })
      .output();
    return out.success;
  } catch {
    return false;
  }
}

if (import.meta.main) {
  let failed = false;
  for (const part of parts) {
    console.log(`\n=== ${part} ===`);
    try {
      if (part === "control") {
        if (!(await _which("etcd"))) console.log("etcd is not installed: skein runs alone");
        const { runControlBench } = await import("./control_bench.ts");
        const r = await runControlBench({ tls, progress: (l) => console.log(`# ${l}`) });
        console.log(r.table);
      } else if (part === "mesh") {
        if (!(await _which("wrk"))) throw new Error("wrk is not installed (apt-get install wrk)");
        if (!(await _which("haproxy"))) console.log("haproxy is not installed: no peer to compare");
        const { observeArg, runMeshBench } = await import("./mesh_bench.ts");
        // With mTLS, a second caller without skein-mux/1 shows what the mux buys, same rounds;
        // with `--observe` the second pair has observability on instead, and the first off.
        await runMeshBench({
          mtls: meshTls,
          abOutbound: meshTls,
          route: Deno.args.includes("--route"),
          observePair: observeArg(Deno.args),
        });
      } else if (part === "h2") {
        if (!(await _which("h2load"))) {
          throw new Error("h2load is not installed (apt-get install nghttp2-client)");
        }
        const { runH2Bench } = await import("./h2_bench.ts");
        await runH2Bench();
      } else if (part === "ingress") {
        if (!(await _which("wrk"))) throw new Error("wrk is not installed (apt-get install wrk)");
        const { runIngressBench } = await import("./ingress_bench.ts");
        await runIngressBench();
      } else if (part === "capacity") {
        const { runCapacityBench } = await import("./capacity_bench.ts");
        const n = (k: string) => Deno.env.get(k) ? Number(Deno.env.get(k)) : undefined;
        await runCapacityBench({
          services: n("CAPACITY_SERVICES"),
          heartbeats: { proxies: n("CAPACITY_PROXIES"), rack: n("CAPACITY_RACK") },
        });
      } else if (part === "scale") {
        const { runScaleBench } = await import("./scale_bench.ts");
        const n = (k: string) => Deno.env.get(k) ? Number(Deno.env.get(k)) : undefined;
        await runScaleBench({
          instances: n("SCALE_INSTANCES"),
          watchers: n("SCALE_WATCHERS"),
          changes: n("SCALE_CHANGES"),
        });
      } else if (part === "fleet") {
        const { runFleetBench } = await import("./fleet_bench.ts");
        await runFleetBench();
      } else if (part === "footprint") {
        if (!(await _which("wrk"))) throw new Error("wrk is not installed (apt-get install wrk)");
        if (!(await _which("haproxy"))) console.log("haproxy is not installed: no peer to compare");
        const { runFootprintBench } = await import("./footprint.ts");
        await runFootprintBench();
      } else if (part === "soak") {
        const i = Deno.args.indexOf("--minutes");
        const minutes = i === -1 ? 30 : Number(Deno.args[i + 1]);
        const { runSoak } = await import("./footprint.ts");
        await runSoak(minutes, 1000);
      } else {
        throw new Error(
          `unknown benchmark part "${part}" (control | mesh | ingress | footprint | soak | fleet | capacity | scale)`,
        );
      }
    } catch (e) {
      failed = true;
      console.error(`bench ${part} failed: ${e instanceof Error ? e.message : e}`);
    }
  }
  Deno.exit(failed ? 1 : 0);
}
