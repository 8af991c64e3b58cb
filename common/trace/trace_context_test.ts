import { assertEquals } from "../../tests/assert.ts";
import {
  formatTraceparent,
  parseB3,
  parseTraceparent,
  sampleRoot,
  traceparentSampled,
} from "./trace_context.ts";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN = "00f067aa0ba902b7";

Deno.test("traceparentSampled() reads the flag and refuses malformed values", () => {
  assertEquals(traceparentSampled(`00-${TRACE}-${SPAN}-01`), 1);
  assertEquals(traceparentSampled(`00-${TRACE}-${SPAN}-00`), 0);
  assertEquals(traceparentSampled(`00-${TRACE}-${SPAN}-03`), 1);
  // A later version may append fields; version 00 may not.
  assertEquals(traceparentSampled(`01-${TRACE}-${SPAN}-01-extra`), 1);
  assertEquals(traceparentSampled(`00-${TRACE}-${SPAN}-01-extra`), -1);
  assertEquals(traceparentSampled(`ff-${TRACE}-${SPAN}-01`), -1);
  assertEquals(traceparentSampled(`00-${"0".repeat(32)}-${SPAN}-01`), -1);
  assertEquals(traceparentSampled(`00-${TRACE}-${"0".repeat(16)}-01`), -1);
  assertEquals(traceparentSampled(`00-${TRACE.toUpperCase()}-${SPAN}-01`), -1);
  assertEquals(traceparentSampled("garbage"), -1);
});

Deno.test("parseTraceparent() gives the ids and keeps tracestate", () => {
  assertEquals(parseTraceparent(`00-${TRACE}-${SPAN}-01`, "k=v"), {
    traceId: TRACE,
    spanId: SPAN,
    sampled: true,
    traceState: "k=v",
  });
  assertEquals(parseTraceparent("00-x", null), null);
  assertEquals(formatTraceparent(TRACE, SPAN), `00-${TRACE}-${SPAN}-01`);
});

Deno.test("parseB3() reads multi-header and single-header B3", () => {
  const h = (m: Record<string, string>) => (n: string) => m[n] ?? null;
  assertEquals(
    parseB3(h({ "x-b3-traceid": "a3ce929d0e0e4736", "x-b3-spanid": SPAN, "x-b3-sampled": "1" })),
    { traceId: "0000000000000000a3ce929d0e0e4736", spanId: SPAN, sampled: true, traceState: null },
  );
  assertEquals(parseB3(h({ "x-b3-traceid": TRACE, "x-b3-spanid": SPAN }))?.sampled, null);
  assertEquals(
    parseB3(h({ "x-b3-traceid": TRACE, "x-b3-spanid": SPAN, "x-b3-flags": "1" }))
      ?.sampled,
    true,
  );
  assertEquals(parseB3(h({ b3: `${TRACE}-${SPAN}-0` })), {
    traceId: TRACE,
    spanId: SPAN,
    sampled: false,
    traceState: null,
  });
  assertEquals(parseB3(h({ "x-b3-traceid": "zz", "x-b3-spanid": SPAN })), null);
  assertEquals(parseB3(h({})), null);
});

Deno.test("sampleRoot() follows always, never and the ratio", () => {
  assertEquals(sampleRoot("always", () => 0.99), true);
  assertEquals(sampleRoot("never", () => 0), false);
  assertEquals(sampleRoot(0.01, () => 0.005), true);
  assertEquals(sampleRoot(0.01, () => 0.5), false);
  assertEquals(sampleRoot(0, () => 0), false);
});
