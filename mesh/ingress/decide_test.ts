import { assert, assertEquals } from "../../tests/assert.ts";
import { ProxyError } from "../forward/mod.ts";
import { DEFAULT_HEAD_LIMITS, parseRequestHead, type RequestHead } from "../http1/mod.ts";
import { IngressTable, splitTarget } from "./decide.ts";

function head(target: string, host: string | null): RequestHead {
  const raw = new TextEncoder().encode(
    `GET ${target} HTTP/1.1\r\n${host === null ? "" : `host: ${host}\r\n`}` +
      "x-forwarded-proto: https\r\n\r\n",
  );
  return parseRequestHead(raw, 0, raw.length, DEFAULT_HEAD_LIMITS);
}

function assertInstanceOf(x: unknown, cls: typeof ProxyError): asserts x is ProxyError {
  assert(x instanceof cls, `expected a ProxyError, got ${String(x)}`);
}

Deno.test("IngressTable.decide() routes, or answers 404 no_route and 400 for unroutable targets", () => {
  const t = new IngressTable({
    routes: [{ host: "shop.example.com", path_prefix: "/", service: "web" }],
  });
  assertEquals(t.decide(head("/x", "shop.example.com")), "web");
  // An absolute-form target's authority replaces Host (RFC 9112 3.2.2).
  assertEquals(t.decide(head("http://shop.example.com/x", "evil.example.com")), "web");
  const none = t.decide(head("/x", "other.example.com"));
  assertInstanceOf(none, ProxyError);
  assertEquals([none.status, none.code], [404, "no_route"]);
  for (const target of ["*", "shop.example.com:443"]) {
    const bad = t.decide(head(target, "shop.example.com"));
    assertInstanceOf(bad, ProxyError);
    assertEquals(bad.status, 400);
  }
});

Deno.test("IngressTable.decide() drops a client's x-forwarded-proto (the listener sets its own)", () => {
  const t = new IngressTable({ routes: [{ path_prefix: "/", service: "web" }] });
  const h = head("/", "shop.example.com");
  assertEquals(t.decide(h), "web");
  assertEquals(h.hop[h.names.indexOf("x-forwarded-proto")], true);
});

Deno.test("IngressTable.decide() on a redirect_https listener answers 308 with the https URL", () => {
  const r = new IngressTable({ routes: [], redirect_https: 443 });
  const moved = r.decide(head("/cart?item=7", "Shop.example.com:80"));
  assertInstanceOf(moved, ProxyError);
  assertEquals([moved.status, moved.code], [308, "https_redirect"]);
  assertEquals(moved.headers, "location: https://shop.example.com/cart?item=7\r\n");
  const other = new IngressTable({ routes: [], redirect_https: 8443 });
  const p = other.decide(head("/", "shop.example.com"));
  assertInstanceOf(p, ProxyError);
  assertEquals(p.headers, "location: https://shop.example.com:8443/\r\n");
  // No usable Host: nothing to redirect to.
  const bad = other.decide(head("/", "a b"));
  assertInstanceOf(bad, ProxyError);
  assertEquals(bad.status, 400);
});

Deno.test("splitTarget() reads origin and absolute forms, dropping userinfo", () => {
  assertEquals(splitTarget("/a?b", "h"), { host: "h", path: "/a?b", origin: "" });
  assertEquals(splitTarget("http://u@h:8080", null), {
    host: "h:8080",
    path: "/",
    origin: "http://u@h:8080",
  });
  assertEquals(splitTarget("https://h?x", null), { host: "h", path: "/?x", origin: "https://h" });
  assertEquals(splitTarget("*", "h"), null);
});

Deno.test("IngressTable.decide() routes the normalized path and forwards it, so dot segments cannot leave a prefix", () => {
  const t = new IngressTable({ routes: [{ path_prefix: "/public", service: "site" }] });
  // Each of these is /private to an app that resolves the path: no route takes it.
  for (const target of ["/public/../private", "/public/%2e%2e/private", "/public/./../private"]) {
    const h = head(target, "shop.example.com");
    const d = t.decide(h);
    assertInstanceOf(d, ProxyError);
    assertEquals([target, d.status, d.code], [target, 404, "no_route"]);
  }
  // Escapes servers disagree about are refused rather than guessed at.
  for (const target of ["/public/..%2fprivate", "/public/..%5Cprivate", "/public%3b/x"]) {
    const d = t.decide(head(target, "shop.example.com"));
    assertInstanceOf(d, ProxyError);
    assertEquals([target, d.status], [target, 400]);
  }
  // A path that normalizes into the prefix is routed and forwarded as routed, query kept.
  const h = head("/x/..//public/./a?q=1", "shop.example.com");
  assertEquals(t.decide(h), "site");
  assertEquals([h.target, h.targetRewritten], ["/public/a?q=1", true]);
  const abs = head("http://shop.example.com/public/b/../c?z#f", "shop.example.com");
  assertEquals(t.decide(abs), "site");
  assertEquals(abs.target, "http://shop.example.com/public/c?z");
  // An already normal path is forwarded untouched.
  const plain = head("/public/a?q=1", "shop.example.com");
  assertEquals(t.decide(plain), "site");
  assertEquals([plain.target, plain.targetRewritten], ["/public/a?q=1", undefined]);
});

Deno.test("IngressTable.decide() refuses the mesh's own TCP tunnel upgrade from outside clients", () => {
  const t = new IngressTable({ routes: [{ path_prefix: "/public", service: "web" }] });
  for (const up of ["skein-tcp", "SKEIN-TCP", "websocket, skein-tcp", "skein-tcp/1"]) {
    const raw = new TextEncoder().encode(
      `GET /public/x HTTP/1.1\r\nhost: a\r\nconnection: upgrade\r\nupgrade: ${up}\r\n\r\n`,
    );
    const d = t.decide(parseRequestHead(raw, 0, raw.length, DEFAULT_HEAD_LIMITS));
    assertInstanceOf(d, ProxyError);
    assertEquals([d.status, d.code], [400, "bad_request"], up);
  }
  // A WebSocket upgrade is the app's business.
  const ws = new TextEncoder().encode(
    "GET /public/x HTTP/1.1\r\nhost: a\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n",
  );
  assertEquals(t.decide(parseRequestHead(ws, 0, ws.length, DEFAULT_HEAD_LIMITS)), "web");
});
