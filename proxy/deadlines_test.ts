/**
 * @module
 * The deadline ticker under a fake clock: deadlines fire on time (at most one granularity
 * late), an earlier deadline moves the timer forward, and requests that finish in time cost
 * no timer firing.
 */
import { FakeClock } from "../lib/mod.ts";
import { DeadlineTicker, type Expiring } from "./deadlines.ts";
import { assertEquals } from "../tests/support/assert.ts";

class Item implements Expiring {
  deadline = 0;
  denseIndex = -1;
  expiredAt: number[] = [];
  aborted = 0;
  constructor(readonly clock: FakeClock) {}
  expire(): void {
    this.expiredAt.push(this.clock.now());
  }
  abort(): void {
    this.aborted++;
  }
}

/**
 * A ticker (10 ms granularity) on a fake clock whose timer firings are counted, tracking one
 * item; `deadline`, when given, is set on the item and armed.
 */
function setup(deadline = 0) {
  const clock = new FakeClock();
  let fired = 0;
  const setTimeout = clock.setTimeout.bind(clock);
  clock.setTimeout = (fn, ms) =>
    setTimeout(() => {
      fired++;
      fn();
    }, ms);
  const ticker = new DeadlineTicker(clock, 10);
  const item = new Item(clock);
  ticker.track(item);
  if (deadline > 0) {
    item.deadline = deadline;
    ticker.arm(deadline);
  }
  return { clock, ticker, item, fired: () => fired };
}

Deno.test("a deadline fires when due, once", () => {
  const { clock, item } = setup(250);
  clock.advance(249);
  assertEquals(item.expiredAt, []);
  clock.advance(1000);
  assertEquals(item.expiredAt, [250]);
  assertEquals(clock.pending, 0, "no timer left once nothing is pending");
});

Deno.test("an earlier deadline moves the timer forward; a later one waits its turn", () => {
  const { clock, ticker, item: slow } = setup(15_000);
  const fast = new Item(clock);
  ticker.track(fast);
  fast.deadline = 100;
  ticker.arm(fast.deadline);
  clock.advance(100);
  assertEquals(fast.expiredAt, [100]);
  assertEquals(slow.expiredAt, []);
  clock.advance(20_000);
  assertEquals(slow.expiredAt, [15_000]);
});

Deno.test("requests that finish in time cost no timer firing each", () => {
  const { clock, ticker, item, fired } = setup();
  // 1000 requests, one every 5 ms, each done in 1 ms with a 15 s timeout.
  for (let i = 0; i < 1000; i++) {
    item.deadline = clock.now() + 15_000;
    ticker.arm(item.deadline);
    clock.advance(1);
    item.deadline = 0;
    clock.advance(4);
  }
  assertEquals(item.expiredAt, []);
  assertEquals(fired(), 0, "the timer is due at the first deadline, after the last request");
  clock.advance(15_000);
  assertEquals(fired(), 1);
  assertEquals(clock.pending, 0);
});

Deno.test("a deadline closer than the granularity fires at most one granularity late", () => {
  const { clock, item } = setup(3);
  clock.advance(10);
  assertEquals(item.expiredAt, [10]);
});

Deno.test("close stops the timer: pending deadlines never fire", () => {
  const { clock, ticker, item } = setup(50);
  ticker.close();
  clock.advance(100);
  assertEquals(item.expiredAt, []);
  assertEquals(clock.pending, 0);
});

Deno.test("abortAll aborts every tracked item, with or without a deadline", () => {
  const clock = new FakeClock();
  const ticker = new DeadlineTicker(clock);
  const waiting = new Item(clock), idle = new Item(clock), gone = new Item(clock);
  waiting.deadline = 5000;
  for (const item of [waiting, idle, gone]) ticker.track(item);
  ticker.untrack(gone);
  ticker.abortAll();
  assertEquals([waiting.aborted, idle.aborted, gone.aborted], [1, 1, 0]);
  ticker.close();
});
