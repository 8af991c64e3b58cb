import { assertEquals } from "../tests/assert.ts";
import { formatDuration, parseDuration, parseSize } from "./units.ts";
import { formatHostPort, parseHostPort, parsePeer } from "./address.ts";

Deno.test("parseDuration() reads single and compound units", () => {
  const rows: [string, number | null][] = [
    ["250ms", 250],
    ["5s", 5000],
    ["2m", 120_000],
    ["1h", 3_600_000],
    ["1m30s", 90_000],
    ["1.5s", 1500],
    ["0", 0],
    ["", null],
    ["5", null],
    ["fast", null],
    ["-1s", null],
    ["1s1m", null],
    ["1s 2ms", 1002],
    // Spaces between number and unit, as sizes allow ("1 MB").
    ["100 ms", 100],
    ["1m 30s", 90_000],
    [" 5 s ", 5000],
    ["5 5s", null],
    ["1 s 1 m", null],
    ["1000d", null],
    ["s", null],
  ];
  for (const [text, ms] of rows) assertEquals(parseDuration(text), ms, text);
});

Deno.test("formatDuration() round-trips through parseDuration()", () => {
  for (const ms of [0, 1, 250, 1000, 90_000, 3_600_000, 1234]) {
    assertEquals(parseDuration(formatDuration(ms)), ms);
  }
});

Deno.test("parseSize() reads binary and decimal units", () => {
  const rows: [string, number | null][] = [
    ["64KiB", 65536],
    ["1MiB", 1048576],
    ["10MB", 10_000_000],
    ["512", 512],
    ["512B", 512],
    ["1 GiB", 1073741824],
    ["lots", null],
    ["1PB", null],
    ["-1KiB", null],
  ];
  for (const [text, n] of rows) assertEquals(parseSize(text), n, text);
});

Deno.test("parseHostPort() accepts IPv4, IPv6 and names and rejects the rest", () => {
  assertEquals(parseHostPort("127.0.0.1:7400"), { hostname: "127.0.0.1", port: 7400 });
  assertEquals(parseHostPort("[::1]:80"), { hostname: "::1", port: 80 });
  assertEquals(parseHostPort("cp-1.internal:7401"), { hostname: "cp-1.internal", port: 7401 });
  for (
    const bad of ["127.0.0.1", ":80", "a:b", "1.2.3.4:65536", "256.1.1.1:1", "a b:1", "::1:80"]
  ) {
    assertEquals(typeof parseHostPort(bad), "string", bad);
  }
  assertEquals(formatHostPort({ hostname: "::1", port: 1 }), "[::1]:1");
});

Deno.test("parsePeer() splits id and address", () => {
  assertEquals(parsePeer("cp-2=10.0.0.2:7401"), { id: "cp-2", hostname: "10.0.0.2", port: 7401 });
  assertEquals(typeof parsePeer("=10.0.0.2:7401"), "string");
  assertEquals(typeof parsePeer("cp 2=10.0.0.2:7401"), "string");
});
