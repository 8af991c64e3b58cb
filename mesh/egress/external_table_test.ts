import { assertEquals } from "../../tests/assert.ts";
import { ResourceSchema } from "../../config/resource_schema.ts";
import { externalEndpointKey, externalTable, hostLine, originForm } from "./external_table.ts";

const parse = (xs: unknown[]) => xs.map((x) => ResourceSchema.parse(x));

Deno.test("externalTable() indexes names and hosts; the first listing a host:port keeps it", () => {
  const t = externalTable(parse([
    { kind: "ExternalService", name: "stripe", hosts: ["API.stripe.com:443", "b.stripe.com:443"] },
    { kind: "ExternalService", name: "dup", hosts: ["api.stripe.com:443", "api.stripe.com:8443"] },
    { kind: "ExternalService", name: "pinned", hosts: ["x.example:1"], tls: { ca_file: "/ca" } },
    { kind: "Policy", service: "stripe" },
  ]));
  assertEquals([...t.byName.keys()], ["stripe", "dup", "pinned"]);
  assertEquals(t.byName.get("stripe")!.hosts, [
    { host: "api.stripe.com", port: 443 },
    { host: "b.stripe.com", port: 443 },
  ]);
  assertEquals(t.byName.get("pinned")!.caFile, "/ca");
  assertEquals(t.byName.get("stripe")!.caFile, null);
  assertEquals(t.byHost.get("api.stripe.com:443"), "stripe");
  assertEquals(t.byHost.get("api.stripe.com"), "stripe");
  assertEquals(t.byHost.get("api.stripe.com:8443"), "dup");
  assertEquals(t.conflicts, [{ host: "api.stripe.com:443", kept: "stripe", ignored: "dup" }]);
});

Deno.test("hostLine(), externalEndpointKey() and originForm()", () => {
  assertEquals(hostLine({ host: "a.example", port: 443 }), "host: a.example\r\n");
  assertEquals(hostLine({ host: "a.example", port: 8443 }), "host: a.example:8443\r\n");
  assertEquals(externalEndpointKey("s", { host: "a.example", port: 1 }), "s@a.example:1");
  for (
    const [target, want] of [
      ["/v1/x", null],
      ["http://a.example/v1?q", "/v1?q"],
      ["http://a.example", "/"],
      ["http://a.example?q=1", "/?q=1"],
      ["HTTPS://u@a.example:8/p", "/p"],
      ["*", null],
    ] as const
  ) assertEquals(originForm(target), want, target);
});

Deno.test("ExternalService refuses out-of-range ports and more than 64 hosts", () => {
  const bad = (r: unknown) => !ResourceSchema.safeParse(r).success;
  const svc = { kind: "ExternalService", name: "s" };
  assertEquals(bad({ ...svc, hosts: ["a.example:0"] }), true);
  assertEquals(bad({ ...svc, hosts: ["a.example:65536"] }), true);
  assertEquals(
    bad({ ...svc, hosts: Array.from({ length: 65 }, (_, i) => `h${i}.example:443`) }),
    true,
  );
  assertEquals(
    bad({ ...svc, hosts: ["a.example:443"], tls: { ca_file: "/x", verify: false } }),
    true,
  );
  assertEquals(bad({ ...svc, hosts: ["a.example:443"], tls: { ca_file: "/x" } }), false);
});
