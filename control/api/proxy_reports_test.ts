import { assert, assertEquals } from "../../tests/assert.ts";
import {
  MAX_PROXY_REPORTS,
  PROXY_REPORT_TTL_MS,
  ProxyReports,
  ProxyReportSchema,
} from "./proxy_reports.ts";

const report = (node: string) => ({ node, version: "0.1.0", cert_not_after: 5, unenforced: [] });

Deno.test("proxy reports are validated and bounded", () => {
  assert(ProxyReportSchema.safeParse(report("vm-1")).success);
  for (
    const bad of [
      { ...report("vm-1"), extra: 1 },
      { ...report("vm-1"), version: "x".repeat(65) },
      { ...report("vm-1"), unenforced: Array.from({ length: 33 }, () => "a") },
      { ...report("vm-1"), cert_not_after: -1 },
      { ...report("bad name!") },
    ]
  ) {
    assert(!ProxyReportSchema.safeParse(bad).success, JSON.stringify(bad).slice(0, 80));
  }
});

Deno.test("the store keeps the newest report per node, caps its size and forgets old ones", () => {
  const s = new ProxyReports();
  s.record(report("vm-1"), ["a", "a"], 1);
  s.record({ ...report("vm-1"), version: "0.2.0" }, ["b"], 2);
  assertEquals(s.list(2).map((r) => [r.node, r.version, r.services, r.last_heartbeat]), [
    ["vm-1", "0.2.0", ["b"], 2],
  ]);
  for (let i = 0; i < MAX_PROXY_REPORTS + 5; i++) s.record(report(`n-${i}`), ["x"], 3);
  assertEquals(s.list(3).length, MAX_PROXY_REPORTS);
  assertEquals(s.list(3 + PROXY_REPORT_TTL_MS + 1).length, 0);
});
