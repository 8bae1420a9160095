/**
 * @module
 * The seed join schedule under a fake clock: attempts at 0, 1, 3, 7 … s (doubling waits up to
 * 30 s), success ends it, cancel ends it at once, and only the first failure is an error log.
 */
import { assertEquals } from "../tests/support/assert.ts";
import { FakeClock } from "../lib/clock.ts";
import { createLogger } from "../lib/log.ts";
import { joinSeedsWithRetry } from "./join_retry.ts";

/** Lets every promise continuation run (the fake clock only moves when told). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

function setup(answerOnAttempt: number) {
  const clock = new FakeClock();
  const attemptsAt: number[] = [];
  const lines: { level: string; msg: string }[] = [];
  const log = createLogger("weft", "debug", (l) => lines.push(JSON.parse(l)));
  const join = () => {
    attemptsAt.push(clock.now());
    return attemptsAt.length >= answerOnAttempt
      ? Promise.resolve(2)
      : Promise.reject(new Error("join failed: no seed answered"));
  };
  const seedJoin = joinSeedsWithRetry({ seeds: ["10.0.0.1:7946"], join, clock, log });
  /** Advances in 100 ms steps, letting each attempt's promise settle before the next step. */
  const runFor = async (ms: number) => {
    for (let t = 0; t < ms; t += 100) {
      await settle();
      clock.advance(100);
    }
    await settle();
  };
  return { clock, attemptsAt, lines, seedJoin, runFor };
}

Deno.test("failed joins are retried after 1, 2, 4 … s, the wait capped at 30 s", async () => {
  const { attemptsAt, runFor, seedJoin } = setup(Infinity);
  await runFor(100_000);
  assertEquals(attemptsAt, [0, 1000, 3000, 7000, 15_000, 31_000, 61_000, 91_000]);
  seedJoin.cancel();
});

Deno.test("no attempt comes before its wait is over", async () => {
  const { attemptsAt, runFor, seedJoin } = setup(Infinity);
  await runFor(900);
  assertEquals(attemptsAt, [0]);
  await runFor(100);
  assertEquals(attemptsAt, [0, 1000]);
  seedJoin.cancel();
});

Deno.test("the join ends when a seed answers, and logs the attempt that did", async () => {
  const { attemptsAt, runFor, seedJoin, clock, lines } = setup(3);
  await runFor(60_000);
  assertEquals(attemptsAt, [0, 1000, 3000]);
  assertEquals(await seedJoin.done, { joined: true, seedsAnswered: 2, attempt: 3 });
  assertEquals(clock.pending, 0);
  assertEquals(lines.map((l) => [l.level, l.msg]), [
    ["error", "join failed: no seed answered; retrying in 1000 ms"],
    ["debug", "join failed: no seed answered; retrying in 2000 ms"],
    ["info", "joined the cluster"],
  ]);
});

Deno.test("cancel during a wait ends the join at once and leaves no timer", async () => {
  const { attemptsAt, runFor, seedJoin, clock } = setup(Infinity);
  await runFor(1500); // attempts at 0 and 1000, now waiting 2 s
  seedJoin.cancel();
  assertEquals(await seedJoin.done, { joined: false, attempts: 2 });
  assertEquals(clock.pending, 0);
  await runFor(10_000);
  assertEquals(attemptsAt, [0, 1000]);
});

Deno.test("cancel while an attempt runs: its failure is neither logged nor retried", async () => {
  const clock = new FakeClock();
  const lines: string[] = [];
  const attempt = Promise.withResolvers<number>();
  let attempts = 0;
  const seedJoin = joinSeedsWithRetry({
    seeds: ["10.0.0.1:7946"],
    join: () => {
      attempts++;
      return attempt.promise;
    },
    clock,
    log: createLogger("weft", "debug", (l) => lines.push(l)),
  });
  seedJoin.cancel();
  attempt.reject(new Error("join failed"));
  assertEquals(await seedJoin.done, { joined: false, attempts: 1 });
  assertEquals(attempts, 1);
  assertEquals(lines, []);
  assertEquals(clock.pending, 0);
});
