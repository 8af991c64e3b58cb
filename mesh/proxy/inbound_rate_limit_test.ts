import { assert, assertEquals } from "../../tests/assert.ts";
import { ProxyError } from "../forward/mod.ts";
import { parseRequestHead } from "../http1/mod.ts";
import { InboundRateLimits, type RateLimitSpec } from "./inbound_rate_limit.ts";
import { SHARED_RATE_BYTES, SharedRates } from "../resilience/shared_rate.ts";

function setup() {
  const rates = new SharedRates(new SharedArrayBuffer(SHARED_RATE_BYTES));
  const clock = { ns: 1_000_000_000_000 };
  const make = () => new InboundRateLimits(rates, () => clock.ns);
  return { rates, clock, make };
}

const LEDGER: RateLimitSpec = {
  service: "ledger",
  requests_per_second: 10,
  burst: 5,
  scope: "instance",
};

function req(method = "GET", target = "/") {
  const b = new TextEncoder().encode(`${method} ${target} HTTP/1.1\r\nhost: ledger\r\n\r\n`);
  return parseRequestHead(b, 0, b.length);
}
const GET = req();

function admitted(
  l: InboundRateLimits,
  n: number,
  caller: string | null = null,
  head = GET,
): number {
  let ok = 0;
  for (let i = 0; i < n; i++) if (l.check("ledger", caller, head) === null) ok++;
  return ok;
}

Deno.test("a token bucket: burst at once, then the rate; 429 with its headers", () => {
  const { clock, make } = setup();
  const l = make();
  l.apply([LEDGER], ["ledger"], () => 1);
  assertEquals(admitted(l, 5), 5);
  const e = l.check("ledger", null, GET);
  assert(e instanceof ProxyError);
  assertEquals([e.status, e.code], [429, "rate_limited"]);
  assertEquals(
    e.headers,
    "retry-after: 1\r\nx-ratelimit-limit: 10\r\nx-ratelimit-remaining: 0\r\nx-ratelimit-reset: 1\r\n",
  );
  clock.ns += 100e6; // 100 ms at 10/s: one more
  assertEquals(admitted(l, 3), 1);
  clock.ns += 10e9; // a long pause refills only up to the burst
  assertEquals(admitted(l, 20), 5);
  // Other services and proxies without the resource are not limited.
  assertEquals(l.check("billing", null, GET), null);
  const none = make();
  none.apply([LEDGER], ["billing"], () => 1);
  assertEquals(admitted(none, 50), 50);
});

Deno.test("two workers share one bucket", () => {
  const { make } = setup();
  const a = make(), b = make();
  a.apply([LEDGER], ["ledger"], () => 1);
  b.apply([LEDGER], ["ledger"], () => 1);
  assertEquals(admitted(a, 3) + admitted(b, 10) + admitted(a, 10), 5);
});

Deno.test("per: caller gives every caller its own bucket", () => {
  const { make } = setup();
  const l = make();
  l.apply([{ ...LEDGER, per: "caller" }], ["ledger"], () => 1);
  assertEquals(admitted(l, 10, "spiffe://td/svc/a"), 5);
  assertEquals(admitted(l, 10, "spiffe://td/svc/b"), 5);
  assertEquals(admitted(l, 10, "spiffe://td/svc/a"), 0);
});

Deno.test("scope: fleet admits the limit's share of the passing instances and re-shares", () => {
  const { clock, make } = setup();
  const l = make();
  const fleet: RateLimitSpec = { ...LEDGER, requests_per_second: 60, burst: 6, scope: "fleet" };
  l.apply([fleet], ["ledger"], () => 3);
  assertEquals(l.rateOf("ledger"), 20);
  assertEquals(admitted(l, 10), 2); // burst 6 / 3
  clock.ns += 1e9;
  assertEquals(admitted(l, 100), 2, "a second refills 20/s but only up to the burst share");
  l.apply([fleet], ["ledger"], () => 2);
  assertEquals(l.rateOf("ledger"), 30);
  clock.ns += 1e9;
  assertEquals(admitted(l, 100), 3);
  // No passing instance known (the catalog has not caught up): the whole limit, not a division by 0.
  l.apply([fleet], ["ledger"], () => 0);
  assertEquals(l.rateOf("ledger"), 60);
});

Deno.test("routes get their own buckets; other requests share the service's", () => {
  const { make } = setup();
  const l = make();
  l.apply(
    [{
      ...LEDGER,
      routes: [
        { match: { path_prefix: "/charge", method: "post" }, requests_per_second: 1, burst: 2 },
        { match: { path: "/refund" }, requests_per_second: 1, burst: 1 },
      ],
    }],
    ["ledger"],
    () => 1,
  );
  const charge = req("POST", "/charge/1?x=y");
  assertEquals(admitted(l, 10, null, charge), 2);
  const e = l.check("ledger", null, charge);
  assert(e instanceof ProxyError && e.headers!.includes("x-ratelimit-limit: 1\r\n"));
  assert(e.message.includes("on this route"));
  assertEquals(admitted(l, 10, null, req("POST", "/refund")), 1);
  // A GET on /charge is not the route's: it takes from the service's bucket of 5.
  assertEquals(admitted(l, 10, null, req("GET", "/charge/1")), 5);
  assertEquals(admitted(l, 10), 0);
});

Deno.test("a full shared bucket table still limits: new buckets share the overflow bucket", () => {
  const { rates, make } = setup();
  for (let i = 0; rates.cell(`filler-${i}`) !== rates.overflowCell; i++) {
    assert(i < 10_000, "the table never filled");
  }
  const l = make();
  l.apply(
    [LEDGER, { ...LEDGER, per: "caller", service: "billing" }],
    ["ledger", "billing"],
    () => 1,
  );
  assertEquals(admitted(l, 20), 5, "the limit holds on the overflow bucket");
  const e = l.check("ledger", null, GET);
  assert(e instanceof ProxyError);
  assertEquals(e.code, "rate_limited");
  assert(rates.overflowed > 0, "overflow is counted");
  // Per-caller buckets that find no room fall back to the service's own bucket.
  assert(l.check("billing", "spiffe://td/svc/a", GET) instanceof ProxyError);
});
