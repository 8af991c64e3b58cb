import { assertEquals } from "../../tests/assert.ts";
import { type AccessBase, type AccessEnd, accessLine } from "./access_record.ts";

/** What the line must equal: the record's fields, `start` as Date.toISOString gives it. */
function _reference(b: AccessBase, e: AccessEnd): unknown {
  return { ...b, start: new Date(b.start).toISOString(), ...e };
}

const BASE: AccessBase = {
  type: "http",
  node: "vm-1",
  side: "client",
  start: Date.UTC(2026, 11, 6, 21, 10, 5, 7),
  method: "GET",
  path: "/a",
  authority: "ledger",
  bytes_in: 0,
  caller: "billing",
  destination: "ledger",
  trace_id: null,
  request_id: null,
};
const END: AccessEnd = {
  duration_ms: 1.25,
  status: 200,
  bytes_out: 12,
  endpoint: "127.0.0.1:9",
  retries: 0,
  error: null,
};

Deno.test("accessLine() writes the record as JSON, escaping what needs it", () => {
  const cases: [Partial<AccessBase>, Partial<AccessEnd>][] = [
    [{}, {}],
    [{ start: BASE.start + 0.9 }, {}],
    [{ start: BASE.start + 45 }, {}],
    [{ start: BASE.start + 993 }, { error: "upstream_reset" }],
    [{ path: '/q"x\\y', authority: null, bytes_in: null }, { endpoint: null }],
    [{ path: "/\u00e9\u2028\x01\x7f", request_id: "r\n1" }, { status: 0 }],
    [{ caller: "spiffe://skein.local/svc/a", trace_id: "4bf92f3577b34da6a3ce929d0e0e4736" }, {}],
  ];
  for (const [b, e] of cases) {
    const base = { ...BASE, ...b };
    const end = { ...END, ...e };
    const line = accessLine(base, end);
    assertEquals(JSON.parse(line), _reference(base, end), line);
  }
});

Deno.test("accessLine() formats each second's date again as time moves on", () => {
  const a = BASE.start;
  for (const t of [a, a + 999, a + 1000, a + 86_400_000 + 5, a - 1]) {
    const line = accessLine({ ...BASE, start: t }, END);
    assertEquals(JSON.parse(line).start, new Date(t).toISOString());
  }
});
