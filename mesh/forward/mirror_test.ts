import { assert, assertEquals } from "../../tests/assert.ts";
import { parseRequestHead } from "../http1/mod.ts";
import { mirrorBytes, mirrorRequest, type MirrorTarget, shadowHost } from "./mirror.ts";
import { ConnectionPool } from "./pool.ts";

const dec = new TextDecoder();

Deno.test("shadowHost puts -shadow after the host name, before a port", () => {
  assertEquals(shadowHost("ledger"), "ledger-shadow");
  assertEquals(shadowHost("ledger:8080"), "ledger-shadow:8080");
  assertEquals(shadowHost("[::1]"), "[::1]-shadow");
  assertEquals(shadowHost(null), "-shadow");
});

Deno.test("a copy keeps method, target, end-to-end fields and the body; marks itself", () => {
  const raw = new TextEncoder().encode(
    "POST /pay?x=1 HTTP/1.1\r\nHost: ledger:80\r\nConnection: keep-alive, x-hop\r\nx-hop: 1\r\n" +
      "Content-Length: 3\r\nx-user: ann\r\nx-skein-mirror: 0\r\nx-skein-destination: evil\r\n\r\n",
  );
  const head = parseRequestHead(raw, 0, raw.length);
  const out = dec.decode(
    mirrorBytes(head, new TextEncoder().encode("abc"), "x-skein-destination: ledger\r\n"),
  );
  assertEquals(
    out,
    "POST /pay?x=1 HTTP/1.1\r\nx-user: ann\r\nhost: ledger-shadow:80\r\nx-skein-mirror: 1\r\n" +
      "connection: close\r\ncontent-length: 3\r\nx-skein-destination: ledger\r\n\r\nabc",
  );
});

Deno.test("copies are dropped and counted without a body, an endpoint or a free slot", () => {
  const counted: string[] = [];
  let free = 0;
  const t: MirrorTarget = {
    pick: () => null,
    extraHeaders: "",
    tryAcquire: () => free-- > 0,
    release: () => {},
    count: (o) => counted.push(o),
  };
  const raw = new TextEncoder().encode("GET / HTTP/1.1\r\nhost: a\r\n\r\n");
  const head = parseRequestHead(raw, 0, raw.length);
  const pool = new ConnectionPool();
  mirrorRequest(pool, t, head, null);
  mirrorRequest(pool, t, head, new Uint8Array(0));
  t.pick = () => ({ key: "x", hostname: "127.0.0.1", port: 1 });
  mirrorRequest(pool, t, head, new Uint8Array(0));
  assertEquals(counted, ["dropped_body", "no_endpoint", "dropped_concurrency"]);
  assert(free < 0);
  pool.close();
});
