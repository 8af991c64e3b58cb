import assert from "node:assert/strict";
import { OpenUpgrades } from "./open_upgrades.ts";
import { nullLogger } from "../../common/log.ts";

Deno.test("OpenUpgrades.recheck() closes what is no longer allowed, or cannot be checked", () => {
  const u = new OpenUpgrades(nullLogger);
  const closed: string[] = [];
  let allowB = true;
  const mk = (name: string, allowed: () => boolean) => ({
    stillAllowed: allowed,
    close: () => closed.push(name),
  });
  const a = mk("a", () => true);
  u.add(a);
  u.add(mk("b", () => allowB));
  u.add(mk("c", () => {
    throw new Error("policy gone");
  }));
  assert.equal(u.recheck(), 1);
  assert.deepEqual(closed, ["c"]);
  allowB = false;
  assert.equal(u.recheck(), 1);
  assert.deepEqual(closed, ["c", "b"]);
  assert.equal(u.size, 1);
  u.remove(a);
  assert.equal(u.recheck(), 0);
  assert.equal(u.size, 0);
});
