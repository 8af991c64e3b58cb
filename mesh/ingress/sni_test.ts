import { assertEquals } from "../../tests/assert.ts";
import { certDnsNames, SniIndex } from "./sni.ts";

Deno.test("SniIndex.pick() prefers an exact name, then a one-label wildcard, else the first", () => {
  const idx = new SniIndex([
    { names: ["shop.example.com"] },
    { names: ["*.example.com", "admin.example.com"] },
    { names: ["api.example.com", "shop.example.com"] },
  ]);
  assertEquals(idx.pick("shop.example.com"), 0);
  assertEquals(idx.pick("API.example.com."), 2);
  assertEquals(idx.pick("admin.example.com"), 1);
  assertEquals(idx.pick("x.example.com"), 1);
  assertEquals(idx.pick("a.b.example.com"), 0);
  assertEquals(idx.pick("example.com"), 0);
  assertEquals(idx.pick(undefined), 0);
});

Deno.test("certDnsNames() reads DNS SANs, else the subject CN", () => {
  assertEquals(certDnsNames("DNS:a.example.com, IP Address:127.0.0.1, DNS:*.b.com", "CN=x"), [
    "a.example.com",
    "*.b.com",
  ]);
  assertEquals(certDnsNames(undefined, "O=skein\nCN=Shop.Example.com"), ["shop.example.com"]);
  assertEquals(certDnsNames(undefined, "O=skein"), []);
});
