import assert from "node:assert/strict";
import { nodeId } from "../../common/ids.ts";
import { spiffeControlAuthorizer } from "./stream.ts";

Deno.test("spiffeControlAuthorizer() accepts only the SPIFFE id of the claimed control node", () => {
  const auth = spiffeControlAuthorizer("skein.local");
  const id = (...uris: string[]) => ({ uris });
  assert.deepStrictEqual(
    auth(nodeId("cp-1"), id("spiffe://skein.local/control/cp-1"), "inbound"),
    true,
  );
  assert.deepStrictEqual(
    auth(nodeId("cp-1"), id("spiffe://skein.local/control/cp-2"), "inbound"),
    false,
  );
  assert.deepStrictEqual(
    auth(nodeId("cp-1"), id("spiffe://other/control/cp-1"), "outbound"),
    false,
  );
  assert.deepStrictEqual(
    auth(nodeId("cp-1"), id("spiffe://skein.local/svc/cp-1"), "inbound"),
    false,
  );
  assert.deepStrictEqual(auth(nodeId("cp-1"), null, "inbound"), false);
});
