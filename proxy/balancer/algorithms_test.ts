/**
 * @module
 * Behaviour specific to each algorithm: round-robin order, consistent-hash stickiness and
 * remapping on membership change (measured), least request and peak EWMA steering away from
 * load and latency, Envoy's weighted least-request split, and parameter validation.
 */
import { FakeClock } from "../../lib/clock.ts";
import { LeastRequestBalancer } from "./least_request.ts";
import { isPrime, MaglevBalancer } from "./maglev.ts";
import { PeakEwmaBalancer } from "./peak_ewma.ts";
import { RingHashBalancer } from "./ring_hash.ts";
import { RoundRobinBalancer } from "./round_robin.ts";
import { endpoint, endpoints } from "../../tests/support/balancer.ts";
import { seededRandom } from "./weighted.ts";
import type { Balancer } from "./balancer.ts";
import { EdfSchedule } from "./edf.ts";
import { hash32 } from "./hash.ts";

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

const keys = Array.from({ length: 20_000 }, (_, i) => `session-${i}`);

function owners(balancer: Balancer): string[] {
  return keys.map((hashKey) => balancer.pick({ hashKey })!.key);
}

Deno.test("round robin rotates through endpoints in order", () => {
  const balancer = new RoundRobinBalancer();
  const set = endpoints(3);
  balancer.update(set);
  const order = Array.from({ length: 6 }, () => balancer.pick({})!.key);
  const expected = [...set, ...set].map((e) => e.key);
  assert(order.join() === expected.join(), `order ${order}`);
});

Deno.test("hash32 is stable and spreads keys", () => {
  assert(hash32("abc") === hash32("abc"), "same input, same hash");
  assert(hash32("abc") !== hash32("abd"), "different input, different hash");
  assert(hash32("abc", 0) !== hash32("abc", 1), "seed changes the hash");
  const buckets = new Array(16).fill(0);
  for (const k of keys) buckets[hash32(k) >>> 28]++;
  const expected = keys.length / 16;
  assert(buckets.every((b) => Math.abs(b - expected) < expected * 0.1), `buckets ${buckets}`);
});

for (
  const [name, make, bound, boundBetweenSurvivors] of [
    // Bounds on all keys moved and on keys moved between surviving endpoints. Ring hash
    // follows Envoy's sizing: with N-1 endpoints each gets ~1024/(N-1) points instead of
    // ~1024/N, and the extra points take some keys from other survivors. Maglev's table
    // refill also shifts a few keys between survivors (the paper reports the same).
    ["ring hash", () => new RingHashBalancer({ minimumRingSize: 1024 }), 0.2, 0.08],
    ["maglev", () => new MaglevBalancer({ tableSize: 65537 }), 0.15, 0.05],
  ] as const
) {
  Deno.test(`${name}: the same key always reaches the same endpoint`, () => {
    const balancer: Balancer = make();
    const set = endpoints(10);
    balancer.update(set);
    const first = owners(balancer);
    assert(owners(balancer).join() === first.join(), "repeated picks moved keys");
    // A new snapshot with equal membership (fresh objects, shuffled order) changes nothing.
    const fresh = endpoints(10).reverse();
    balancer.update(fresh);
    const again = owners(balancer);
    assert(again.join() === first.join(), "a recompiled snapshot moved keys");
    // And a fresh balancer (another node) agrees: the mapping depends only on the set.
    const other: Balancer = make();
    other.update(endpoints(10));
    assert(owners(other).join() === first.join(), "two nodes disagree on the mapping");
  });

  Deno.test(`${name}: removing one of 10 endpoints remaps about 1/10 of keys`, () => {
    const balancer: Balancer = make();
    const set = endpoints(10);
    balancer.update(set);
    const before = owners(balancer);
    const removed = set[3].key;
    balancer.update(set.filter((e) => e.key !== removed));
    const after = owners(balancer);
    let moved = 0;
    let movedFromOthers = 0;
    for (let i = 0; i < keys.length; i++) {
      if (before[i] !== after[i]) {
        moved++;
        if (before[i] !== removed) movedFromOthers++;
      }
    }
    const fraction = moved / keys.length;
    console.log(
      `${name}: ${(fraction * 100).toFixed(1)}% of keys moved ` +
        `(${(movedFromOthers / keys.length * 100).toFixed(2)}% from surviving endpoints)`,
    );
    assert(fraction > 0.05 && fraction < bound, `moved ${fraction} of keys, bound ${bound}`);
    assert(
      movedFromOthers / keys.length < boundBetweenSurvivors,
      `moved ${movedFromOthers / keys.length} between survivors`,
    );
    assert(after.every((k) => k !== removed), "keys still reach the removed endpoint");
  });
}

Deno.test("ring hash: ring size follows Envoy's scaling and limits", () => {
  const ring = new RingHashBalancer({ minimumRingSize: 1024 });
  ring.update(endpoints(3));
  assert(ring.ringSize >= 1024 && ring.ringSize < 1100, `ring size ${ring.ringSize}`);
  const weighted = new RingHashBalancer({ minimumRingSize: 1024 });
  weighted.update([endpoint(0, { weight: 1 }), endpoint(1, { weight: 99 })]);
  // The lightest endpoint needs ceil(0.01 * 1024) = 11 points, so the ring grows to ~1100.
  assert(weighted.ringSize >= 1100 && weighted.ringSize <= 1101, `size ${weighted.ringSize}`);
  let threw = false;
  try {
    new RingHashBalancer({ minimumRingSize: 9_000_000 });
  } catch {
    threw = true;
  }
  assert(threw, "a ring above 8M points must be refused");
});

Deno.test("maglev: table size must be prime", () => {
  assert(isPrime(65537) && isPrime(2) && !isPrime(65536) && !isPrime(1), "isPrime");
  let message = "";
  try {
    new MaglevBalancer({ tableSize: 1000 });
  } catch (err) {
    message = (err as Error).message;
  }
  assert(message.includes("prime"), `message ${message}`);
});

Deno.test("maglev: table shares follow weights exactly enough", () => {
  const balancer = new MaglevBalancer({ tableSize: 10007 });
  const set = [endpoint(0, { weight: 1 }), endpoint(1, { weight: 3 })];
  balancer.update(set);
  const share = owners(balancer).filter((k) => k === set[1].key).length / keys.length;
  assert(Math.abs(share - 0.75) < 0.02, `heavy endpoint share ${share}`);
});

Deno.test("least request: prefers less-loaded endpoints (power of two choices)", () => {
  const balancer = new LeastRequestBalancer({ random: seededRandom(7) });
  const set = endpoints(10);
  balancer.update(set);
  // Load the first five endpoints with 3 long-running requests each.
  const loaded = new Set(set.slice(0, 5).map((e) => e.key));
  const held = [];
  for (let guard = 0; guard < 10_000 && held.length < 15; guard++) {
    const picked = balancer.pick({})!;
    if (loaded.has(picked.key) && balancer.active(picked.key) <= 3) held.push(picked);
    else balancer.release(picked, { latencyMs: 1, ok: true });
  }
  assert(held.length === 15, "could not set up the load");
  let toLoaded = 0;
  for (let i = 0; i < 10_000; i++) {
    const picked = balancer.pick({})!;
    if (loaded.has(picked.key)) toLoaded++;
    balancer.release(picked, { latencyMs: 1, ok: true });
  }
  // Both samples must land on loaded endpoints: about (5/10)^2 = 25%, against 50% at random.
  const share = toLoaded / 10_000;
  assert(share > 0.2 && share < 0.3, `loaded endpoints got ${share}`);
  for (const e of held) balancer.release(e, { latencyMs: 1, ok: true });
  assert(set.every((e) => balancer.active(e.key) === 0), "counters must return to zero");
});

Deno.test("least request: counters survive an update for endpoints that stay", () => {
  const balancer = new LeastRequestBalancer({ random: seededRandom(1) });
  const set = endpoints(2);
  balancer.update(set);
  const picked = balancer.pick({})!;
  balancer.update(endpoints(3));
  assert(balancer.active(picked.key) === 1, "active count lost across update");
  balancer.release(picked, { latencyMs: 1, ok: true });
  assert(balancer.active(picked.key) === 0, "release after update must count");
});

Deno.test("least request: weighted mode divides weight by active + 1 (Envoy bias 1.0)", () => {
  const balancer = new LeastRequestBalancer({ random: seededRandom(3) });
  const set = [endpoint(0, { weight: 1 }), endpoint(1, { weight: 2 })];
  balancer.update(set);
  // Idle: a 1:2 split.
  const counts = new Map<string, number>();
  for (let i = 0; i < 3000; i++) {
    const picked = balancer.pick({})!;
    counts.set(picked.key, (counts.get(picked.key) ?? 0) + 1);
    balancer.release(picked, { latencyMs: 1, ok: true });
  }
  assert(counts.get(set[1].key) === 2000, `idle split ${[...counts.values()]}`);
  // Hold requests without releasing: the heavy endpoint's effective weight drops as
  // 2 / (active + 1), so picks even out instead of staying 1:2.
  const held = [];
  for (let i = 0; i < 300; i++) held.push(balancer.pick({})!);
  const heavy = held.filter((e) => e.key === set[1].key).length;
  assert(heavy > 150 && heavy < 200, `heavy endpoint took ${heavy} of 300 held requests`);
});

Deno.test("peak EWMA: steers away from a slow endpoint and retries it after decay", () => {
  const clock = new FakeClock(0);
  const balancer = new PeakEwmaBalancer({ clock, random: seededRandom(11), decayMs: 10_000 });
  const set = endpoints(5);
  const slow = set[0].key;
  balancer.update(set);
  let toSlow = 0;
  for (let i = 0; i < 5000; i++) {
    const picked = balancer.pick({})!;
    if (i >= 1000 && picked.key === slow) toSlow++;
    clock.advance(1);
    balancer.release(picked, { latencyMs: picked.key === slow ? 500 : 10, ok: true });
  }
  const share = toSlow / 4000;
  assert(share < 0.02, `slow endpoint still got ${share} of requests`);
  const estimate = balancer.estimateMs(slow)!;
  assert(estimate > 100, `slow estimate ${estimate}`);
  // Without traffic the estimate decays, so the endpoint is probed again later.
  clock.advance(60_000);
  assert(balancer.estimateMs(slow)! < 2, `estimate after decay ${balancer.estimateMs(slow)}`);
});

Deno.test("peak EWMA: prefers the endpoint with fewer requests in flight at equal latency", () => {
  const balancer = new PeakEwmaBalancer({ clock: new FakeClock(0), random: seededRandom(5) });
  const set = endpoints(2);
  balancer.update(set);
  const first = balancer.pick({})!;
  const second = balancer.pick({})!;
  assert(first.key !== second.key, "second pick must avoid the busy endpoint");
});

Deno.test("EDF schedule serves indices in proportion to weight, in a fixed interleaving", () => {
  const schedule = new EdfSchedule();
  schedule.reset(3);
  const weights = [1, 2, 5];
  weights.forEach((w, i) => schedule.add(i, w));
  const counts = [0, 0, 0];
  let longestRun = 0;
  let run = 0;
  let previous = -1;
  for (let i = 0; i < 8000; i++) {
    const index = schedule.pop();
    counts[index]++;
    run = index === previous ? run + 1 : 1;
    longestRun = Math.max(longestRun, run);
    previous = index;
    schedule.add(index, weights[index]);
  }
  assert(counts.join() === "1000,2000,5000", `counts ${counts}`);
  assert(longestRun <= 3, `heaviest index picked ${longestRun} times in a row`);
});

Deno.test("round robin with weights follows them exactly over a cycle", () => {
  const balancer = new RoundRobinBalancer();
  const set = [endpoint(0, { weight: 1 }), endpoint(1, { weight: 3 })];
  balancer.update(set);
  let heavy = 0;
  for (let i = 0; i < 400; i++) if (balancer.pick({})!.key === set[1].key) heavy++;
  assert(heavy === 300, `heavy endpoint got ${heavy} of 400`);
});
