import { assertEquals } from "../../tests/assert.ts";
import { Authorization } from "../../config/mod.ts";
import { parseSpiffeId, type SpiffeId } from "../../common/tls/mod.ts";
import { compileAuthorization, evaluate } from "./mod.ts";

function id(uri: string): SpiffeId {
  const p = parseSpiffeId(uri);
  if (!p) throw new Error(`bad id ${uri}`);
  return p;
}

Deno.test("evaluate(): from: gateway/<name> matches that gateway of the trust domain only", () => {
  const policy = compileAuthorization(
    Authorization.parse({
      kind: "Authorization",
      service: "frontend",
      default: "deny",
      allow: [{ from: ["gateway/edge"] }, { from: ["gateway/lab-*"], paths: ["/lab"] }],
    }),
    { trustDomain: "skein.local" },
  );
  const allowed = (uri: string, path = "/") =>
    evaluate(policy, { caller: id(uri), method: "GET", path }).allowed;
  assertEquals(allowed("spiffe://skein.local/gateway/edge"), true);
  assertEquals(allowed("spiffe://skein.local/gateway/edge2"), false);
  // A service (or federated gateway) of the same name is not the gateway.
  assertEquals(allowed("spiffe://skein.local/svc/edge"), false);
  assertEquals(allowed("spiffe://other.example/gateway/edge"), false);
  assertEquals(allowed("spiffe://skein.local/gateway/lab-1", "/lab"), true);
  assertEquals(allowed("spiffe://skein.local/gateway/lab-1", "/"), false);
});
