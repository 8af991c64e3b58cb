/**
 * `skein proxy` processes on fleet hosts: a web host runs its app and a proxy in its own
 * namespace, a caller host runs a proxy with an upstream listener on its bridge address, and
 * all of them enrol with, register at and watch the namespaced control cluster.
 * @module
 */
import { Child } from "../proxy_process/helpers.ts";
import { request, waitFor } from "../control_process/cluster.ts";
import { SKEIN_ENTRY } from "../skein_cli.ts";
import { sharedSeed } from "../tls_fixture.ts";
import type { ControlFleet } from "./control_fleet.ts";

const _APP = new URL("./fleet_app.ts", import.meta.url).pathname;
/** Where a web host's app listens, inside its namespace. */
const APP_PORT = 8080;
/** Every proxy's inbound port on its host's bridge address. */
const INBOUND_PORT = 15443;

/** A running proxy (and the app of a web host). */
export interface FleetProxy {
  host: string;
  child: Child;
  app: Deno.ChildProcess | null;
  admin: string;
  upstreams: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * Creates a one-use join token for `service` through the leader of the nodes `among` (default:
 * every running node; a test that cut one off names the others).
 */
async function _joinToken(
  cf: ControlFleet,
  service: string,
  among?: readonly string[],
): Promise<string> {
  const leader = await cf.cluster.waitLeader(30_000, among ? [...among] : undefined);
  const r = await request(`${cf.cluster.api(leader)}/v1/tokens`, "POST", {
    service,
    ttl: "1h",
    uses: 1,
  });
  if (r.status !== 201) throw new Error(`join token: ${r.status} ${JSON.stringify(r.json)}`);
  return String(r.json?.token);
}

/**
 * Starts a proxy on `host` with default tuning (again, after a stop: it keeps its data dir).
 * With `service`, it also starts that service's app there and registers it; with `calls`, it
 * opens an upstream listener for that service.
 */
export async function startFleetProxy(
  cf: ControlFleet,
  dir: string,
  host: string,
  opts: { service?: string; calls?: string; tokenVia?: readonly string[] },
): Promise<FleetProxy> {
  const addr = cf.fleet.addr(host);
  const seed = await sharedSeed();
  let app: Deno.ChildProcess | null = null;
  if (opts.service) {
    const [cmd, ...pre] = cf.fleet.exec(host);
    app = new Deno.Command(cmd!, {
      args: [...pre, Deno.execPath(), "run", "--allow-net", _APP, String(APP_PORT), host],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  }
  const tokenFile = `${dir}/${host}.join-token`;
  // A restart keeps the identity it enrolled (and must not need the control plane for it).
  const enrolled = await Deno.stat(`${dir}/${host}-data/identity.json`).then(
    () => true,
    () => false,
  );
  if (!enrolled) {
    await Deno.writeTextFile(
      tokenFile,
      (await _joinToken(cf, opts.service ?? host, opts.tokenVia)) + "\n",
    );
  }
  const config = {
    node: host,
    data_dir: `${dir}/${host}-data`,
    control: cf.cluster.ids().map((id) => cf.cluster.api(id)),
    ca_file: seed.certFile,
    token_file: tokenFile,
    admin: `${addr}:0`,
    inbound: `${addr}:${INBOUND_PORT}`,
    advertise: addr,
    workers: 1,
    ...(opts.service ? { services: [{ name: opts.service, id: host, port: APP_PORT }] } : {}),
    ...(opts.calls ? { upstreams: [{ service: opts.calls, listen: `${addr}:0` }] } : {}),
  };
  const path = `${dir}/${host}.yaml`;
  await Deno.writeTextFile(path, JSON.stringify(config));
  const [cmd, ...pre] = cf.fleet.exec(host);
  const child = new Child(
    new Deno.Command(cmd!, {
      args: [
        ...pre,
        Deno.execPath(),
        "run",
        "--allow-all",
        "--quiet",
        SKEIN_ENTRY,
        "proxy",
        "--config",
        path,
      ],
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn(),
  );
  const m = await child.waitLine(/proxy listening"? (.*)$/, 60_000);
  const f = Object.fromEntries(
    [...m[1]!.matchAll(/(\w+)=("[^"]*"|\S*)/g)].map((x) => [x[1]!, x[2]!.replace(/^"|"$/g, "")]),
  );
  const upstreams: Record<string, string> = {};
  for (const kv of (f.upstreams ?? "").split(",").filter(Boolean)) {
    const [s, a] = kv.split("=");
    upstreams[s!] = a!;
  }
  return {
    host,
    child,
    app,
    admin: f.admin!,
    upstreams,
    async stop() {
      await child.stop("SIGKILL").catch(() => {});
      if (app) {
        try {
          app.kill("SIGKILL");
        } catch { /* gone */ }
        await app.status;
      }
    },
  };
}

/** Waits until the caller's balancer has `n` eligible endpoints for `service`. */
export async function waitEligible(p: FleetProxy, service: string, n: number): Promise<void> {
  await waitFor(`${n} eligible ${service} endpoints at ${p.host}`, 60_000, async () => {
    const res = await fetch(`http://${p.admin}/endpoints`);
    const e = await res.json() as { outbound: { service: string; eligible: number }[] };
    return e.outbound.find((d) => d.service === service)?.eligible === n ? true : undefined;
  });
}
