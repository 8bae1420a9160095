/**
 * @module
 * Lifeguard suspicion timeouts.
 */
import { assert, assertEquals } from "../tests/support/assert.ts";
import { FakeClock } from "../lib/clock.ts";
import { remainingSuspicionMs, Suspicion, suspicionTimeoutMs } from "./suspicion.ts";
import { Awareness } from "./awareness.ts";

Deno.test("min suspicion timeout scales with log10 of cluster size", () => {
  assertEquals(suspicionTimeoutMs(4, 1, 1000), 4000);
  assertEquals(suspicionTimeoutMs(4, 100, 1000), 8000);
  assertEquals(suspicionTimeoutMs(4, 1000, 1000), 12000);
});

Deno.test("timeout shrinks from max to min as confirmations arrive", () => {
  assertEquals(remainingSuspicionMs(0, 3, 2000, 12000), 12000);
  const one = remainingSuspicionMs(1, 3, 2000, 12000);
  assert(one < 12000 && one > 2000);
  assertEquals(remainingSuspicionMs(3, 3, 2000, 12000), 2000);
});

Deno.test("a suspicion fires early after independent confirmations, not duplicates", () => {
  const clock = new FakeClock();
  let firedAt = -1;
  const s = new Suspicion(clock, "a", 2, 1000, 6000, () => firedAt = clock.now());
  clock.advance(500);
  assert(!s.confirm("a"), "the accuser is not a confirmation");
  assert(s.confirm("b"));
  assert(!s.confirm("b"), "duplicates do not count");
  assert(s.confirm("c"));
  clock.advance(400);
  assertEquals(firedAt, -1);
  clock.advance(200);
  assertEquals(firedAt, 1000);
});

Deno.test("awareness stretches timeouts and is clamped", () => {
  const a = new Awareness(8);
  assertEquals(a.scale(500), 500);
  a.apply(3);
  assertEquals(a.scale(500), 2000);
  a.apply(100);
  assertEquals(a.score, 7);
  a.apply(-100);
  assertEquals(a.score, 0);
});
