import { assert, assertEquals } from "../../../tests/assert.ts";
import { recordOf } from "./fields.ts";

Deno.test("recordOf() keeps fields named like Object's members as plain fields", () => {
  const h = recordOf([
    [":method", "GET"],
    ["__proto__", "x"],
    ["constructor", "c"],
    ["tostring", "t"],
  ], "request");
  assert(typeof h !== "string");
  assertEquals(h["__proto__"], "x");
  assertEquals(h["constructor"], "c");
  assertEquals(Object.keys(h), [":method", "__proto__", "constructor", "tostring"]);
  // Nothing inherited answers for a field the block did not carry.
  const r = recordOf([[":status", "200"]], "response");
  assert(typeof r !== "string");
  assertEquals(r["toString"], undefined);
  assertEquals(r["hasOwnProperty"], undefined);
  assertEquals(r["__proto__"], undefined);
  assertEquals({ ...r }, { ":status": "200" });
});
