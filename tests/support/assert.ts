/**
 * @module
 * The few assertions the tests use (Deno's `@std/assert` is not reachable from here), built
 * on `node:assert` so failures print a diff.
 */
import nodeAssert from "node:assert/strict";

export function assert(cond: unknown, message?: string): asserts cond {
  nodeAssert.ok(cond, message);
}

export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, message);
}

export function assertNotEquals<T>(actual: T, expected: T, message?: string): void {
  nodeAssert.notDeepStrictEqual(actual, expected, message);
}

export function assertMatch(actual: string, re: RegExp, message?: string): void {
  nodeAssert.match(actual, re, message);
}

export function assertGreater(a: number, b: number, message?: string): void {
  nodeAssert.ok(a > b, message ?? `expected ${a} > ${b}`);
}

export function assertLess(a: number, b: number, message?: string): void {
  nodeAssert.ok(a < b, message ?? `expected ${a} < ${b}`);
}

/** Asserts that `fn` throws an instance of `type` and returns the error. */
export function assertThrows<E extends Error>(
  fn: () => unknown,
  type: new (...args: never[]) => E,
  includes?: string,
): E {
  try {
    fn();
  } catch (err) {
    nodeAssert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`);
    if (includes) {
      nodeAssert.ok(err.message.includes(includes), `"${err.message}" lacks "${includes}"`);
    }
    return err;
  }
  throw new nodeAssert.AssertionError({ message: `expected ${type.name} to be thrown` });
}

/** Asserts that the promise rejects with `type`; returns the error. */
export async function assertRejects<E extends Error>(
  fn: () => Promise<unknown>,
  type: new (...args: never[]) => E,
  includes?: string,
): Promise<E> {
  try {
    await fn();
  } catch (err) {
    nodeAssert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`);
    if (includes) {
      nodeAssert.ok(err.message.includes(includes), `"${err.message}" lacks "${includes}"`);
    }
    return err;
  }
  throw new nodeAssert.AssertionError({ message: `expected ${type.name} to be rejected` });
}

/** Polls `fn` until it returns a value other than undefined/false, or the deadline passes. */
export async function eventually<T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 10_000,
  intervalMs = 25,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  while (performance.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last}` : ""}`);
}
