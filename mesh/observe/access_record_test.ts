import { assertEquals } from "../../tests/assert.ts";
import {
  type AccessBase,
  type AccessEnd,
  accessLine,
  accessLineMaxBytes,
  encodeAccessLine,
} from "./access_record.ts";

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

Deno.test("encodeAccessLine() stays within accessLineMaxBytes and writes JSON for any strings", () => {
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  // Every kind of code unit: controls, quotes, backslashes, Latin-1, the BMP, lone surrogates.
  const units = [0, 9, 10, 31, 34, 47, 65, 92, 126, 127, 0xe9, 0x2028, 0xd83d, 0xde00, 0xffff];
  const str = () =>
    String.fromCharCode(
      ...Array.from({ length: Math.floor(rnd() * 12) }, () => units[Math.floor(rnd() * 15)]!),
    );
  for (let i = 0; i < 500; i++) {
    const base = {
      ...BASE,
      node: str(),
      method: str(),
      path: str(),
      caller: str(),
      request_id: str(),
    };
    const end = { ...END, endpoint: str(), error: rnd() < 0.5 ? null : str() };
    const out = new Uint8Array(accessLineMaxBytes(base, end) + 8).fill(0xaa);
    const n = encodeAccessLine(base, end, out, 4);
    assertEquals(out[n], 0xaa, "nothing written past the end it returns");
    assertEquals(out[3], 0xaa, "nothing written before the start");
    const line = new TextDecoder().decode(out.subarray(4, n));
    // Lone surrogates become U+FFFD in UTF-8, as JSON.stringify then TextEncoder would make them.
    const expect = JSON.parse(new TextDecoder().decode(new TextEncoder().encode(
      JSON.stringify(_reference(base, end)),
    )));
    assertEquals(JSON.parse(line), expect, line);
  }
});

Deno.test("encodeAccessLine() keeps each line's own method, authority and endpoint as they change", () => {
  const long = "h".repeat(400);
  const out = new Uint8Array(64 * 1024);
  // More combinations than the blocks kept, revisited (long enough for the encoder to stop
  // looking for blocks, and to look again), and an authority too long to keep.
  for (let round = 0; round < 220; round++) {
    for (let i = 0; i < 90; i++) {
      const base = {
        ...BASE,
        method: i % 3 === 0 ? "POST" : "GET",
        authority: i % 7 === 0 ? long : `a${i % 30}`,
      };
      const end = { ...END, endpoint: i % 5 === 0 ? null : `10.0.0.${i % 11}:80` };
      const line = new TextDecoder().decode(out.subarray(0, encodeAccessLine(base, end, out, 0)));
      assertEquals(JSON.parse(line), _reference(base, end), line);
    }
  }
});
