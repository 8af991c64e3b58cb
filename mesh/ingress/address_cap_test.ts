import { assertEquals } from "../../tests/assert.ts";
import { AddressCap } from "./address_cap.ts";

Deno.test("AddressCap refuses an address over its cap until one of its slots is given back", () => {
  const cap = new AddressCap(2);
  assertEquals([cap.take("a"), cap.take("a"), cap.take("a"), cap.take("b")], [
    true,
    true,
    false,
    true,
  ]);
  assertEquals(cap.refused, 1);
  cap.release("a");
  assertEquals(cap.openFrom("a"), 1);
  assertEquals(cap.take("a"), true);
  cap.release("b");
  assertEquals(cap.openFrom("b"), 0);
});
