import { assert, assertEquals } from "../../tests/assert.ts";
import {
  identityLabel,
  identityOfLabel,
  parseSpiffeId,
  spiffeIdFor,
} from "../../common/tls/mod.ts";
import { gatewayIdentityProblem } from "./gateway.ts";

Deno.test("gateway identities round-trip through SPIFFE ids and labels", () => {
  const gw = parseSpiffeId("spiffe://skein.local/gateway/edge")!;
  assertEquals(gw.kind, "gateway");
  assertEquals(identityLabel(gw), "gateway/edge");
  assertEquals(identityOfLabel("gateway/edge"), { kind: "gateway", gateway: "edge" });
  assertEquals(identityOfLabel("payments"), { kind: "service", service: "payments" });
  assertEquals(identityOfLabel("gateway/a/b"), null);
  assertEquals(spiffeIdFor("skein.local", { kind: "gateway", gateway: "edge" }), gw.uri);
});

Deno.test("gatewayIdentityProblem() holds proxy.yaml's gateway key and the certificate together", () => {
  const gw = parseSpiffeId("spiffe://skein.local/gateway/edge")!;
  const svc = parseSpiffeId("spiffe://skein.local/svc/edge")!;
  assertEquals(gatewayIdentityProblem("edge", gw), null);
  assertEquals(gatewayIdentityProblem(undefined, svc), null);
  assert(gatewayIdentityProblem("edge", svc)?.includes("--gateway edge"));
  assert(gatewayIdentityProblem("other", gw)?.includes("gateway other"));
  assert(gatewayIdentityProblem(undefined, gw)?.includes("set gateway: edge"));
});
