/**
 * @module
 * Outlier detection on a FakeClock: what counts towards each threshold, ejection and return,
 * the growing (and decaying) ejection time, and the maxEjectionPercent limit.
 */
import { FakeClock, type OutlierDetectionConfig } from "../lib/mod.ts";
import { assert, assertEquals } from "../tests/support/assert.ts";
import { OutlierDetector } from "./outlier.ts";

function config(overrides: Partial<OutlierDetectionConfig> = {}): OutlierDetectionConfig {
  return {
    consecutive5xxErrors: 3,
    consecutiveGatewayErrors: 0,
    splitExternalLocalOriginErrors: false,
    consecutiveLocalOriginFailures: 5,
    intervalMs: 10_000,
    baseEjectionTimeMs: 30_000,
    maxEjectionTimeMs: 300_000,
    maxEjectionPercent: 100,
    minHealthPercent: 0,
    ...overrides,
  };
}

function detector(overrides: Partial<OutlierDetectionConfig> = {}, keys = ["a", "b", "c", "d"]) {
  const d = new OutlierDetector(config(overrides));
  d.setEndpoints(keys);
  return d;
}

/** Reports `n` responses of `status` from `key`; returns how many of them ejected it. */
function fail(d: OutlierDetector, key: string, n: number, now: number, status = 503): number {
  let ejections = 0;
  for (let i = 0; i < n; i++) if (d.reportStatus(key, status, now)) ejections++;
  return ejections;
}

Deno.test("consecutive 5xx eject an endpoint on the threshold, not before", () => {
  const d = detector();
  assertEquals(fail(d, "a", 2, 0), 0);
  assert(!d.isEjected("a"));
  assertEquals(fail(d, "a", 1, 0, 500), 1, "the third 5xx ejects");
  assert(d.isEjected("a"));
  assertEquals(d.ejectedKeys(), ["a"]);
  assertEquals(d.stats.ejectedNow, 1);
});

Deno.test("a success breaks the run of errors", () => {
  const d = detector();
  fail(d, "a", 2, 0);
  d.reportStatus("a", 200, 0);
  assertEquals(fail(d, "a", 2, 0), 0);
  assert(!d.isEjected("a"));
  d.reportStatus("a", 404, 0); // 4xx is not a server error either
  assertEquals(fail(d, "a", 2, 0), 0);
  assertEquals(fail(d, "a", 1, 0), 1);
});

Deno.test("gateway errors count apart, and a 500 resets only their count", () => {
  const d = detector({ consecutive5xxErrors: 0, consecutiveGatewayErrors: 2 });
  d.reportStatus("a", 502, 0);
  d.reportStatus("a", 500, 0); // a 5xx but not a gateway error
  assertEquals(fail(d, "a", 1, 0, 504), 0);
  assert(!d.isEjected("a"));
  assertEquals(fail(d, "a", 1, 0, 502), 1);
  // consecutive5xxErrors 0 disables that detector: plain 500s never eject.
  assertEquals(fail(d, "b", 50, 0, 500), 0);
});

Deno.test("local-origin failures count as gateway errors unless split", () => {
  const merged = detector({ consecutive5xxErrors: 0, consecutiveGatewayErrors: 2 });
  merged.reportLocalFailure("a", "connect", 0);
  assert(merged.reportLocalFailure("a", "timeout", 0), "two local failures eject");

  const split = detector({
    consecutive5xxErrors: 2,
    splitExternalLocalOriginErrors: true,
    consecutiveLocalOriginFailures: 3,
  });
  split.reportLocalFailure("a", "connect", 0);
  split.reportLocalFailure("a", "reset", 0);
  split.reportStatus("a", 503, 0); // a response: resets the local count, counts one 5xx
  split.reportLocalFailure("a", "connect", 0);
  split.reportLocalFailure("a", "connect", 0);
  assert(!split.isEjected("a"), "the local run was broken by a response");
  assert(split.reportLocalFailure("a", "connect", 0), "third local failure in a row ejects");
});

Deno.test("an ejection ends after baseEjectionTime and the endpoint returns", () => {
  const clock = new FakeClock();
  const d = detector();
  fail(d, "a", 3, clock.now());
  assertEquals(d.nextExpiry, 30_000);
  clock.advance(29_999);
  assert(!d.refresh(clock.now()), "still ejected a millisecond before the end");
  assert(d.isEjected("a"));
  clock.advance(1);
  assert(d.refresh(clock.now()));
  assert(!d.isEjected("a"));
  assertEquals(d.nextExpiry, Infinity);
  assertEquals(d.stats, { ejectedNow: 0, ejectionsTotal: 1, ejectionsOverflow: 0 });
});

Deno.test("each ejection lasts longer, up to maxEjectionTime, and good behaviour decays it", () => {
  const clock = new FakeClock();
  const d = detector({ baseEjectionTimeMs: 1_000, maxEjectionTimeMs: 2_500, intervalMs: 10_000 });
  const durations: number[] = [];
  for (let i = 0; i < 4; i++) {
    fail(d, "a", 3, clock.now());
    const start = clock.now();
    durations.push(d.nextExpiry - start);
    clock.advance(d.nextExpiry - start);
    d.refresh(clock.now());
  }
  assertEquals(durations, [1_000, 2_000, 2_500, 2_500], "base x ejections, capped");

  // Two intervals back in service forgive two ejections: the next one is 1 x base again
  // (the multiplier stopped at 3, 3 - 2 = 1, then +1).
  clock.advance(20_000);
  fail(d, "a", 3, clock.now());
  assertEquals(d.nextExpiry - clock.now(), 2_000);
});

Deno.test("maxEjectionPercent bounds how many endpoints are out at once", () => {
  // 4 endpoints, 50%: two may be ejected, the third is refused (Envoy counts it after ejecting).
  const d = detector({ maxEjectionPercent: 50 });
  assertEquals(fail(d, "a", 3, 0), 1);
  assertEquals(fail(d, "b", 3, 0), 1);
  assertEquals(fail(d, "c", 3, 0), 0);
  assertEquals(d.ejectedKeys(), ["a", "b"]);
  assertEquals(d.stats.ejectionsOverflow, 1);

  // Istio's default 10% with three endpoints: 1/3 > 10%, so nothing is ever ejected.
  const small = detector({ maxEjectionPercent: 10 }, ["a", "b", "c"]);
  assertEquals(fail(small, "a", 30, 0), 0);
});

Deno.test("endpoint records follow the endpoint set; ejections survive a reconfigure", () => {
  const d = detector();
  fail(d, "a", 3, 0);
  fail(d, "b", 2, 0);
  d.configure(config({ consecutive5xxErrors: 5 }));
  d.setEndpoints(["a", "b", "c", "d"]);
  assert(d.isEjected("a"), "kept across a swap");
  assertEquals(fail(d, "b", 2, 0), 0, "b needs 5 now: 2 + 2");
  assertEquals(fail(d, "b", 1, 0), 1, "the old count carried over");
  d.setEndpoints(["c", "d"]);
  assert(!d.isEjected("a"));
  assertEquals(d.stats.ejectedNow, 0);
  assertEquals(d.nextExpiry, Infinity);
});
