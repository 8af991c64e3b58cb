import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import {
  newSessionBalanceBuffer,
  NOT_ACCEPTING,
  SESSION_BALANCE_SLOTS,
  SessionBalance,
  shouldRedirect,
} from "./session_balance.ts";

Deno.test("shouldRedirect() sends a session on only when an accepting worker holds fewer", () => {
  assertEquals(shouldRedirect(0, [0, 0]), false);
  assertEquals(shouldRedirect(1, [1, 0]), true);
  assertEquals(shouldRedirect(1, [1, 1]), false);
  assertEquals(shouldRedirect(2, [2, 1, 3]), true);
  // Workers taking no sessions (starting, draining, crashed) are not deferred to.
  assertEquals(shouldRedirect(3, [3, NOT_ACCEPTING]), false);
  assertEquals(shouldRedirect(0, []), false);
});

Deno.test("SessionBalance: workers sharing one buffer even out, release and shut free a slot", () => {
  const buf = newSessionBalanceBuffer();
  const counts = new Int32Array(buf);
  const a = new SessionBalance(buf, 0, 2);
  const b = new SessionBalance(buf, 1, 2);
  // Before its listener is up a worker admits everything and is not counted.
  assert(a.admit());
  assertEquals(counts[0], NOT_ACCEPTING);
  a.open();
  b.open();
  assert(a.admit(), "empty workers admit");
  assertEquals(a.admit(), false, "a holds one more than b");
  assert(b.admit());
  assert(a.admit(), "even again");
  assertEquals([counts[0], counts[1]], [2, 1]);
  a.release();
  a.release();
  a.release(); // one too many: a count never goes below zero
  assertEquals(counts[0], 0);
  assertEquals(b.admit(), false, "b holds more than a now");
  // A draining or crashed worker stops counting, so the others stop deferring to it.
  a.shut();
  assert(b.admit());
  assertEquals(counts[0], NOT_ACCEPTING);
  a.release();
  assertEquals(counts[0], NOT_ACCEPTING, "releasing on a shut worker leaves it shut");
  b.open();
  SessionBalance.shutSlot(buf, 1);
  assertEquals(counts[1], NOT_ACCEPTING);
});

Deno.test("SessionBalance: workers past the slot table always admit; a wrong buffer is refused", () => {
  const buf = newSessionBalanceBuffer();
  const far = new SessionBalance(buf, SESSION_BALANCE_SLOTS, SESSION_BALANCE_SLOTS + 1);
  far.open();
  for (let i = 0; i < 3; i++) assert(far.admit());
  far.release();
  far.shut();
  assertThrows(() => new SessionBalance(new SharedArrayBuffer(8), 0, 2), RangeError);
});
