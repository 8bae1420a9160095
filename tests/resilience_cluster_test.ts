/**
 * @module
 * Outlier detection and circuit breakers inside cluster state, on a FakeClock: ejected
 * endpoints leave the balancer and come back after the ejection time, minHealthPercent turns
 * ejections off (Envoy panic), and both survive snapshot swaps like the balancer does.
 */
import { assert, assertEquals } from "./support/assert.ts";
import {
  type ClusterConfig,
  FakeClock,
  type OutlierDetectionConfig,
  silentLogger,
  type Snapshot,
} from "../lib/mod.ts";
import { RoundRobinBalancer } from "../proxy/balancer/round_robin.ts";
import { UNLIMITED } from "../proxy/breaker.ts";
import { ClusterManager, ClusterState } from "../proxy/cluster.ts";
import { endpoint, testTuning } from "./support/proxy.ts";

const outlier: OutlierDetectionConfig = {
  consecutive5xxErrors: 2,
  consecutiveGatewayErrors: 0,
  splitExternalLocalOriginErrors: false,
  consecutiveLocalOriginFailures: 5,
  intervalMs: 10_000,
  baseEjectionTimeMs: 1_000,
  maxEjectionTimeMs: 300_000,
  maxEjectionPercent: 100,
  minHealthPercent: 0,
};

const endpoints = [1, 2, 3, 4].map((i) => endpoint({ hostname: "127.0.0.1", port: 9000 + i }));

function cluster(overrides: Partial<ClusterConfig> = {}): ClusterConfig {
  return {
    name: "outbound|svc",
    service: "svc",
    protocol: "http",
    endpoints,
    loadBalancer: { kind: "round_robin" },
    connectTimeoutMs: 1000,
    outlierDetection: outlier,
    ...overrides,
  };
}

/** Keys picked in `n` picks, deduplicated and sorted. */
function picked(state: ClusterState, n = 8): string[] {
  const keys = new Set<string>();
  for (let i = 0; i < n; i++) {
    const e = state.pick({});
    if (e) keys.add(e.key);
  }
  return [...keys].sort();
}

const allKeys = endpoints.map((e) => e.key).sort();

Deno.test("an ejected endpoint receives no picks until its ejection ends", () => {
  const clock = new FakeClock();
  const state = new ClusterState(cluster(), new RoundRobinBalancer(), clock);
  const bad = endpoints[1];
  state.report(bad, 503);
  assertEquals(picked(state), allKeys, "one error is below the threshold");
  state.report(bad, 503);
  assertEquals(picked(state), allKeys.filter((k) => k !== bad.key));
  clock.advance(999);
  assertEquals(picked(state).includes(bad.key), false);
  clock.advance(1);
  assertEquals(picked(state), allKeys, "back after baseEjectionTime, found on the next pick");
});

Deno.test("local failures eject too; client-side outcomes are simply not reported", () => {
  const clock = new FakeClock();
  const state = new ClusterState(cluster(), new RoundRobinBalancer(), clock);
  state.report(endpoints[0], 0, "connect");
  state.report(endpoints[0], 0, "timeout");
  assertEquals(picked(state).includes(endpoints[0].key), false);
});

Deno.test("below minHealthPercent ejections are ignored and every endpoint is used", () => {
  const clock = new FakeClock();
  const state = new ClusterState(
    cluster({ outlierDetection: { ...outlier, minHealthPercent: 60 } }),
    new RoundRobinBalancer(),
    clock,
  );
  for (let i = 0; i < 2; i++) state.report(endpoints[0], 500);
  assertEquals(picked(state).length, 3, "3 of 4 usable = 75% >= 60%: ejection applies");
  assert(!state.panic);
  for (let i = 0; i < 2; i++) state.report(endpoints[1], 500);
  assert(state.panic, "2 of 4 usable = 50% < 60%: panic");
  assertEquals(picked(state), allKeys);
  clock.advance(1_000);
  picked(state);
  assert(!state.panic, "both returned: out of panic");
});

Deno.test("ejections and breaker counts survive snapshot swaps; removing the policy clears", () => {
  const clock = new FakeClock();
  const manager = new ClusterManager(silentLogger, clock);
  const snapshot = (c: ClusterConfig, version: number): Snapshot => ({
    version,
    outbound: new Map(),
    inbound: new Map(),
    clusters: new Map([[c.name, c]]),
    tuning: testTuning(),
  });
  const breaker = { ...UNLIMITED, maxRequests: 1 };
  manager.sync(snapshot(cluster({ circuitBreaker: breaker }), 1));
  const state = manager.get("outbound|svc")!;
  state.report(endpoints[2], 502);
  state.report(endpoints[2], 502);
  assert(state.admit());

  // A new snapshot with the same cluster (new objects, fewer endpoints, a new balancer kind).
  manager.sync(snapshot(
    cluster({
      endpoints: endpoints.slice(1),
      loadBalancer: { kind: "random" },
      circuitBreaker: { ...breaker },
    }),
    2,
  ));
  const same = manager.get("outbound|svc")!;
  assert(same === state, "one state per cluster name");
  assertEquals(picked(same, 32).includes(endpoints[2].key), false, "still ejected");
  assert(!same.admit(), "the request in flight still counts");
  same.done();
  assert(same.admit());
  same.done();

  manager.sync(
    snapshot(cluster({ endpoints: endpoints.slice(1), outlierDetection: undefined }), 3),
  );
  assertEquals(same.outlier, undefined);
  assertEquals(same.breaker, undefined);
  assertEquals(picked(same, 32), allKeys.filter((k) => k !== endpoints[0].key));
  assert(same.admit(), "no breaker: always admitted");
});
