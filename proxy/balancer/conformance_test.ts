/**
 * @module
 * One behavioural suite run against every balancer the factory can build: only healthy
 * endpoints, undefined with none, every endpoint reachable, `update` across membership changes,
 * weights within a chi-square bound, and no heavy allocation per pick.
 */
import type { EndpointConfig, LoadBalancerConfig } from "../../lib/mod.ts";
import type { Balancer } from "./balancer.ts";
import { PROBE_V8_FLAGS } from "../../tests/support/balancer_allocation_probe.ts";
import { createBalancer } from "./factory.ts";
import { CHI_SQUARE_P001, chiSquare, endpoint, endpoints } from "../../tests/support/balancer.ts";
import { seededRandom } from "./weighted.ts";

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

const configs: LoadBalancerConfig[] = [
  { kind: "round_robin" },
  { kind: "random" },
  { kind: "least_request", choiceCount: 2 },
  // A large ring keeps arc lengths close to the weights, so the chi-square bound applies.
  { kind: "ring_hash", minimumRingSize: 65536 },
  { kind: "maglev", tableSize: 65537 },
  { kind: "peak_ewma", decayMs: 10_000 },
];

/** A balancer with a fixed seed and a frozen clock, so every run is the same. */
function build(config: LoadBalancerConfig): Balancer {
  return createBalancer(config, { random: seededRandom(42), clock: { now: () => 1000 } });
}

const keys = Array.from({ length: 50_000 }, (_, i) => `user-${i}`);

/** Picks `count` times with distinct hash keys, releasing each pick at once. */
function pickMany(balancer: Balancer, count: number): (EndpointConfig | undefined)[] {
  const out: (EndpointConfig | undefined)[] = [];
  for (let i = 0; i < count; i++) {
    const picked = balancer.pick({ hashKey: keys[i % keys.length] });
    out.push(picked);
    if (picked) balancer.release(picked, { latencyMs: 5, ok: true });
  }
  return out;
}

for (const config of configs) {
  const name = config.kind;

  Deno.test(`${name}: picks only healthy endpoints`, () => {
    const balancer = build(config);
    const set = [0, 1, 2, 3, 4, 5].map((i) => endpoint(i, { healthy: i % 2 === 0 }));
    balancer.update(set);
    for (const picked of pickMany(balancer, 3000)) {
      assert(picked, "expected an endpoint");
      assert(picked.healthy, `picked unhealthy ${picked.key}`);
    }
  });

  Deno.test(`${name}: returns undefined when no endpoint is healthy`, () => {
    const balancer = build(config);
    balancer.update([]);
    assert(balancer.pick({ hashKey: "a" }) === undefined, "empty set must give undefined");
    balancer.update([endpoint(1, { healthy: false }), endpoint(2, { healthy: false })]);
    assert(balancer.pick({ hashKey: "a" }) === undefined, "all unhealthy must give undefined");
    assert(balancer.pick({}) === undefined, "all unhealthy must give undefined without key");
  });

  Deno.test(`${name}: every healthy endpoint gets picked`, () => {
    const balancer = build(config);
    const set = endpoints(10);
    balancer.update(set);
    const seen = new Set(pickMany(balancer, 2000).map((e) => e?.key));
    for (const e of set) assert(seen.has(e.key), `${e.key} was never picked`);
  });

  Deno.test(`${name}: keeps working after the endpoint set changes`, () => {
    const balancer = build(config);
    const first = endpoints(5);
    balancer.update(first);
    // Leave some requests in flight across the update, as a real proxy does.
    const inFlight = [balancer.pick({ hashKey: "x" })!, balancer.pick({ hashKey: "y" })!];
    const second = [...endpoints(2, 3), ...endpoints(3, 10)]; // 3,4 stay; 10..12 are new
    balancer.update(second);
    for (const e of inFlight) balancer.release(e, { latencyMs: 3, ok: true });
    const allowed = new Set(second.map((e) => e.key));
    const seen = new Set<string>();
    for (const picked of pickMany(balancer, 2000)) {
      assert(picked && allowed.has(picked.key), `picked ${picked?.key} outside the new set`);
      seen.add(picked.key);
    }
    assert(seen.size === second.length, `only ${seen.size} of ${second.length} endpoints used`);
    balancer.update([]);
    assert(balancer.pick({ hashKey: "x" }) === undefined, "emptied set must give undefined");
    balancer.update(first);
    assert(pickMany(balancer, 100).every((e) => e !== undefined), "refilled set must work");
  });

  Deno.test(`${name}: respects weights within a chi-square bound`, () => {
    const balancer = build(config);
    const weights = [1, 2, 3, 4];
    const set = weights.map((weight, i) => endpoint(i, { weight }));
    balancer.update(set);
    const counts = [0, 0, 0, 0];
    const index = new Map(set.map((e, i) => [e.key, i]));
    for (const picked of pickMany(balancer, 20_000)) counts[index.get(picked!.key)!]++;
    const statistic = chiSquare(counts, weights);
    assert(
      statistic < CHI_SQUARE_P001[weights.length - 1],
      `counts ${counts} do not follow weights ${weights} (chi-square ${statistic.toFixed(2)})`,
    );
  });

  Deno.test(`${name}: picks without allocating much`, async () => {
    // Measured in a child process with a young generation large enough that no scavenge
    // hides garbage (see tests/support/balancer_allocation_probe.ts). One small object per pick would be ~48 bytes.
    const probe =
      new URL("../../tests/support/balancer_allocation_probe.ts", import.meta.url).pathname;
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", `--v8-flags=${PROBE_V8_FLAGS}`, probe, JSON.stringify(config)],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(stdout).trim();
    assert(code === 0, `probe failed: ${new TextDecoder().decode(stderr)}`);
    const bytes = Number(text);
    assert(bytes < 24, `${bytes} bytes allocated per pick`);
  });
}
