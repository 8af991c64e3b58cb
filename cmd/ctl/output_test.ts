import assert from "node:assert/strict";
import { formatTable, lineDiff } from "./output.ts";

Deno.test("formatTable aligns columns to the widest cell", () => {
  assert.equal(
    formatTable(["NAME", "N"], [["api", "10"], ["payments", "2"]]),
    "NAME      N\napi       10\npayments  2\n",
  );
});

Deno.test("lineDiff marks removed, added and kept lines", () => {
  assert.equal(lineDiff("a\nb\nc", "a\nx\nc"), "  a\n- b\n+ x\n  c\n");
  assert.equal(lineDiff("", "a"), "- \n+ a\n");
  assert.equal(lineDiff("same", "same"), "  same\n");
});
