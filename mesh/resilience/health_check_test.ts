import assert from "node:assert/strict";
import {
  HealthChecker,
  healthFromHttpStatus,
  type HealthStatus,
  httpProber,
} from "./health_check.ts";

function scripted(results: (HealthStatus | Error)[]) {
  let i = 0;
  return () => {
    const r = results[i++ % results.length]!;
    return r instanceof Error ? Promise.reject(r) : Promise.resolve(r);
  };
}

Deno.test("the first result applies at once, then rise and fall thresholds hold", () => {
  const changes: string[] = [];
  const hc = new HealthChecker(
    scripted([]),
    { rise: 2, fall: 3 },
    (now, before) => changes.push(`${before}->${now}`),
  );
  assert.equal(hc.status, "critical");
  const seq: [HealthStatus, HealthStatus][] = [
    ["passing", "passing"], // first result
    ["critical", "passing"],
    ["critical", "passing"],
    ["passing", "passing"], // streak broken
    ["critical", "passing"],
    ["critical", "passing"],
    ["critical", "critical"], // fall = 3
    ["passing", "critical"],
    ["warning", "critical"], // a different result restarts the streak
    ["warning", "warning"], // rise = 2 towards warning
    ["passing", "warning"],
    ["passing", "passing"],
  ];
  for (const [input, want] of seq) assert.equal(hc.record(input), want, `after ${input}`);
  assert.deepEqual(changes, [
    "critical->passing",
    "passing->critical",
    "critical->warning",
    "warning->passing",
  ]);
});

Deno.test("check() counts a throwing prober as critical", async () => {
  const hc = new HealthChecker(scripted([new Error("refused")]), { fall: 1, initial: "passing" });
  assert.equal(await hc.check(), "critical");
});

Deno.test("check() counts a probe that outlives its timeout as critical", async () => {
  let aborted = false;
  const hang = (signal: AbortSignal) =>
    new Promise<HealthStatus>(() => {
      signal.addEventListener("abort", () => (aborted = true));
    });
  const hc = new HealthChecker(hang, { timeoutMs: 5, initial: "passing", fall: 1 });
  assert.equal(await hc.check(), "critical");
  assert.equal(aborted, true, "the prober was told to stop");
});

Deno.test("run() probes every interval until aborted", async () => {
  const ac = new AbortController();
  const sleeps: number[] = [];
  let probes = 0;
  const hc = new HealthChecker(() => {
    probes++;
    return Promise.resolve("passing");
  }, { intervalMs: 5000 });
  await hc.run(ac.signal, (ms) => {
    sleeps.push(ms);
    if (sleeps.length === 3) ac.abort();
    return Promise.resolve();
  });
  assert.equal(probes, 3, "no probe after the abort");
  assert.deepEqual(sleeps, [5000, 5000, 5000]);
  assert.equal(hc.status, "passing");
});

Deno.test("healthFromHttpStatus follows Consul's convention", () => {
  const table: [number, HealthStatus][] = [
    [200, "passing"],
    [204, "passing"],
    [
      429,
      "warning",
    ],
    [301, "critical"],
    [500, "critical"],
    [404, "critical"],
  ];
  for (const [s, want] of table) assert.equal(healthFromHttpStatus(s), want, String(s));
});

Deno.test("httpProber checks a real HTTP endpoint on 127.0.0.1", async () => {
  let status = 200;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req) => {
      assert.equal(new URL(req.url).pathname, "/healthz");
      return new Response("ok", { status });
    },
  );
  try {
    const url = `http://127.0.0.1:${server.addr.port}/healthz`;
    const probe = httpProber(url);
    assert.equal(await probe(new AbortController().signal), "passing");
    status = 429;
    assert.equal(await probe(new AbortController().signal), "warning");
    status = 503;
    const hc = new HealthChecker(probe, { initial: "passing", timeoutMs: 5000 });
    assert.equal(await hc.check(), "critical");
  } finally {
    await server.shutdown();
  }
  // Nothing listens there any more: a connection error is critical.
  const hc = new HealthChecker(httpProber(`http://127.0.0.1:${server.addr.port}/healthz`), {
    initial: "passing",
    fall: 1,
    timeoutMs: 5000,
  });
  assert.equal(await hc.check(), "critical");
});
