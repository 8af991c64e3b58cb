import { assert, assertEquals } from "../../tests/assert.ts";
import { ProxyError } from "../forward/mod.ts";
import { CatalogInstance } from "../discovery/mod.ts";
import { Upstream } from "../../config/proxy_schema.ts";
import { capabilitiesOfKey, capableInstances, isCapabilityKey, keyOfHeader } from "./capability.ts";

const inst = (service: string, port: number, capabilities: string[]) =>
  CatalogInstance.parse({
    id: `${service}-${port}`,
    service,
    address: "10.0.0.1",
    port,
    capabilities,
  });

Deno.test("a header names a sorted, deduplicated capability set; bad ones are a 400", () => {
  assertEquals(keyOfHeader("translate, summarize"), "cap:summarize,translate");
  assertEquals(keyOfHeader("summarize,summarize"), "cap:summarize");
  for (const bad of ["", " , ", "a b", "x;y", "a".repeat(65)]) {
    const k = keyOfHeader(bad);
    assert(k instanceof ProxyError && k.status === 400, bad);
  }
  assert(isCapabilityKey("cap:a,b") && !isCapabilityKey("ledger"));
  assertEquals(capabilitiesOfKey("cap:a,b"), ["a", "b"]);
});

Deno.test("only instances declaring all asked capabilities are candidates, across services", () => {
  const services = {
    summarizer: [inst("summarizer", 1, ["summarize", "translate"])],
    translator: [inst("translator", 2, ["translate"]), inst("translator", 3, [])],
    coder: [inst("coder", 4, ["code"])],
  };
  assertEquals(capableInstances(services, ["translate"]).map((i) => i.port), [1, 2]);
  assertEquals(capableInstances(services, ["translate", "summarize"]).map((i) => i.port), [1]);
  assertEquals(capableInstances(services, ["fly"]), []);
});

Deno.test("an upstream asks for a service or capabilities, exactly one, over http", () => {
  const u = Upstream.parse({ capabilities: ["translate", "summarize"], listen: "127.0.0.1:9010" });
  assertEquals(u.service, "cap:summarize,translate");
  assert(!Upstream.safeParse({ listen: "127.0.0.1:9010" }).success);
  assert(
    !Upstream.safeParse({ service: "a", capabilities: ["x"], listen: "127.0.0.1:9010" }).success,
  );
  assert(
    !Upstream.safeParse({ capabilities: ["x"], listen: "127.0.0.1:9010", protocol: "tcp" })
      .success,
  );
  assertEquals(Upstream.parse({ service: "ledger", listen: "127.0.0.1:1" }).service, "ledger");
});
