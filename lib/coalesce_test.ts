/**
 * @module
 * Coalescer under a fake clock: one run per burst, a new burst after a run, cancel.
 */
import { assertEquals } from "../tests/support/assert.ts";
import { FakeClock } from "./clock.ts";
import { Coalescer } from "./coalesce.ts";

Deno.test("a burst of requests runs the action once, delayMs after the first", () => {
  const clock = new FakeClock();
  const runs: number[] = [];
  const c = new Coalescer(clock, 20, () => runs.push(clock.now()));
  c.schedule();
  clock.advance(10);
  c.schedule();
  c.schedule();
  clock.advance(9);
  assertEquals(runs, []);
  clock.advance(1);
  assertEquals(runs, [20]);
  clock.advance(100);
  assertEquals(runs, [20]);
});

Deno.test("a request after a run starts a new burst", () => {
  const clock = new FakeClock();
  const runs: number[] = [];
  const c = new Coalescer(clock, 50, () => runs.push(clock.now()));
  c.schedule();
  clock.advance(50);
  c.schedule();
  clock.advance(50);
  assertEquals(runs, [50, 100]);
});

Deno.test("cancel drops the scheduled run and leaves no timer", () => {
  const clock = new FakeClock();
  let runs = 0;
  const c = new Coalescer(clock, 20, () => runs++);
  c.schedule();
  c.cancel();
  assertEquals(clock.pending, 0);
  clock.advance(100);
  assertEquals(runs, 0);
});
