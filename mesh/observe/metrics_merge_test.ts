import { parsePrometheusText, Registry } from "../../common/metrics.ts";
import { assertEquals } from "../../tests/assert.ts";
import { mergeExpositions } from "./metrics_merge.ts";

function worker(i: number, requests: number, inflight: number): string {
  const r = new Registry();
  const c = r.counter({ name: "x_requests_total", help: "h", labelNames: ["dst", "worker"] });
  c.labels("a b", "shared").inc(requests);
  c.labels("a b", String(i)).inc(1);
  r.gauge({ name: "x_active", help: "g" }).set(inflight);
  const h = r.histogram({ name: "x_seconds", help: "d", buckets: [0.1, 1] });
  for (let k = 0; k < requests; k++) h.observe(k % 2 === 0 ? 0.05 : 0.5);
  return r.render();
}

Deno.test("mergeExpositions sums equal series and keeps distinct ones", () => {
  const merged = parsePrometheusText(mergeExpositions([worker(0, 3, 2), worker(1, 4, 5)]));
  const req = merged.get("x_requests_total")!.samples;
  const by = (w: string) => req.find((s) => s.labels.worker === w)?.value;
  assertEquals([by("shared"), by("0"), by("1")], [7, 1, 1]);
  assertEquals(merged.get("x_active")!.samples[0]!.value, 7);
  const hist = merged.get("x_seconds")!.samples;
  const le = (v: string) => hist.find((s) => s.labels.le === v)!.value;
  // 3 -> 2 fast + 1 slow; 4 -> 2 fast + 2 slow.
  assertEquals([le("0.1"), le("1"), le("+Inf")], [4, 7, 7]);
  assertEquals(hist.find((s) => s.name === "x_seconds_count")!.value, 7);
});
