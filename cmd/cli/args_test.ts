import { assertEquals, assertMatch, assertThrows } from "../../tests/assert.ts";
import { type FlagSpec, parseArgs, UsageError } from "./args.ts";

const SPECS: FlagSpec[] = [
  { name: "config", short: "c", value: true, help: "" },
  { name: "output", short: "o", value: true, help: "", choices: ["table", "json"] },
  { name: "force", value: false, help: "" },
];

Deno.test("parseArgs() reads long, short, = and positional forms", () => {
  const a = parseArgs(
    ["x", "--config", "a.yaml", "-o=json", "--force", "--", "--not-a-flag"],
    SPECS,
  );
  assertEquals(a.flags.get("config"), "a.yaml");
  assertEquals(a.flags.get("output"), "json");
  assertEquals(a.flags.get("force"), "true");
  assertEquals(a.positional, ["x", "--not-a-flag"]);
});

Deno.test("parseArgs() rejects unknown flags with a suggestion", () => {
  const e = assertThrows(() => parseArgs(["--confg", "x"], SPECS), UsageError);
  assertEquals(e.message, "unknown flag --confg; did you mean --config?");
  assertMatch(
    assertThrows(() => parseArgs(["--zzzzzz"], SPECS), UsageError).message,
    /^unknown flag --zzzzzz$/,
  );
});

Deno.test("parseArgs() checks values and choices", () => {
  assertMatch(
    assertThrows(() => parseArgs(["--config"], SPECS), UsageError).message,
    /needs a value/,
  );
  assertMatch(
    assertThrows(() => parseArgs(["-o", "xml"], SPECS), UsageError).message,
    /one of table, json/,
  );
  assertMatch(
    assertThrows(() => parseArgs(["--force=1"], SPECS), UsageError).message,
    /takes no value/,
  );
});
