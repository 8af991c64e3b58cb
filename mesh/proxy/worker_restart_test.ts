/** A crashed data-plane worker is restarted (and counted); one that keeps crashing fails /live. */
import { assert, assertEquals } from "../../tests/assert.ts";
import { nullLogger } from "../../common/log.ts";
import { ProxyConfig } from "../../config/mod.ts";
import type { Catalog } from "../discovery/mod.ts";
import { MAX_RESTARTS_PER_WINDOW, WorkerDataPlanes } from "./workers.ts";

const WORKER = new URL("../../tests/fixtures/crashing_worker.ts", import.meta.url);
const CATALOG = {
  index: 7,
  services: {},
  resources: [],
  trust: { roots: [], revoked: [] },
} as unknown as Catalog;

const config = () =>
  ProxyConfig.parse({
    node: "t",
    control: ["https://127.0.0.1:9"],
    admin: "127.0.0.1:0",
    inbound: "127.0.0.1:0",
    upstreams: [{ service: "svc", listen: "127.0.0.1:0" }],
  });

async function until(what: string, fn: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 2400; i++) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

Deno.test("a crashed worker is restarted with the latest catalog and counted", async () => {
  const dir = await Deno.makeTempDir();
  Deno.env.set("SKEIN_TEST_CRASH_MARKER", `${dir}/crashed`);
  Deno.env.set("SKEIN_TEST_CRASH_HOLD", "test:held");
  const planes = await WorkerDataPlanes.start(config(), nullLogger, 2, undefined, {
    workerUrl: WORKER,
    // Under `deno test` each worker type-checks its module first: slow on a busy machine.
    startTimeoutMs: 300_000,
  });
  try {
    planes.applyCatalog(CATALOG);
    await until("a restart", () => planes.restarts === 1);
    // Both workers answer again, the new one on the same shared ports.
    await until("two workers", async () => (await planes.snapshots()).length === 2);
    assert(planes.live());
    assertEquals(planes.restarts, 1);
    // The two requests the crashed worker held are no longer counted against the limit.
    assertEquals(planes.inFlight("test:held"), 0);
  } finally {
    await planes.drain(0);
    Deno.env.delete("SKEIN_TEST_CRASH_MARKER");
    Deno.env.delete("SKEIN_TEST_CRASH_HOLD");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a worker that keeps crashing is given up on and /live says so", async () => {
  Deno.env.set("SKEIN_TEST_CRASH_MARKER", "always");
  const planes = await WorkerDataPlanes.start(config(), nullLogger, 2, undefined, {
    workerUrl: WORKER,
    // Under `deno test` each worker type-checks its module first: slow on a busy machine.
    startTimeoutMs: 300_000,
  });
  try {
    planes.applyCatalog(CATALOG);
    await until("giving up", () => !planes.live());
    assertEquals(planes.restarts, MAX_RESTARTS_PER_WINDOW);
  } finally {
    Deno.env.delete("SKEIN_TEST_CRASH_MARKER");
    await planes.drain(0);
  }
});
