/**
 * Minimal test assertions (JSR's @std/assert is unreachable here); built on node:assert.
 * @module
 */
import nodeAssert from "node:assert/strict";

/** Asserts a value is truthy. */
export function assert(cond: unknown, msg?: string): asserts cond {
  nodeAssert.ok(cond, msg);
}

/** Asserts deep equality. */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, msg);
}

/** Asserts deep inequality. */
export function assertNotEquals<T>(actual: T, expected: T, msg?: string): void {
  nodeAssert.notDeepStrictEqual(actual, expected, msg);
}

/** Asserts a string matches a pattern. */
export function assertMatch(actual: string, pattern: RegExp, msg?: string): void {
  nodeAssert.match(actual, pattern, msg);
}

/** Asserts `fn` throws an instance of `cls` and returns the error. */
export function assertThrows<E extends Error>(
  fn: () => unknown,
  cls: new (...args: never[]) => E,
  msg?: string,
): E {
  try {
    fn();
  } catch (e) {
    if (e instanceof cls) return e;
    throw new Error(`expected ${cls.name} but got ${e}${msg ? `: ${msg}` : ""}`);
  }
  throw new Error(`expected ${cls.name} to be thrown${msg ? `: ${msg}` : ""}`);
}

/** Asserts a promise rejects with an instance of `cls` and returns the error. */
export async function assertRejects<E extends Error>(
  p: Promise<unknown> | (() => Promise<unknown>),
  cls: new (...args: never[]) => E,
  msg?: string,
): Promise<E> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    if (e instanceof cls) return e;
    throw new Error(`expected ${cls.name} but got ${e}${msg ? `: ${msg}` : ""}`);
  }
  throw new Error(`expected ${cls.name} to be rejected${msg ? `: ${msg}` : ""}`);
}
