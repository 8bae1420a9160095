/**
 * @module
 * Measures heap bytes allocated per pick + release of one balancer, precisely: run it in a
 * child process with `--expose-gc` and a 64 MB young generation, so no scavenge happens during
 * the measured loop and the heap growth is exactly what the loop allocated. Used by the
 * conformance suite; prints one number (bytes per pick).
 *
 * `deno run --v8-flags=--expose-gc,--min-semi-space-size=64,--max-semi-space-size=64
 *  tests/support/balancer_allocation_probe.ts '<LoadBalancerConfig as JSON>'`
 */
import type { LoadBalancerConfig } from "../../lib/snapshot.ts";
import { createBalancer } from "../../proxy/balancer/factory.ts";
import { endpoints } from "./balancer.ts";

/** The V8 flags the probe needs. */
export const PROBE_V8_FLAGS = "--expose-gc,--min-semi-space-size=64,--max-semi-space-size=64";

/** Heap bytes allocated per pick + release, averaged over `picks` picks (after warm-up). */
export function bytesPerPick(config: LoadBalancerConfig, picks = 20_000): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error(`run with --v8-flags=${PROBE_V8_FLAGS}`);
  const balancer = createBalancer(config);
  balancer.update(endpoints(100));
  const keys = Array.from({ length: picks }, (_, i) => `user-${i}`);
  const context = { hashKey: "" as string | undefined };
  const outcome = { latencyMs: 5, ok: true };
  for (let i = 0; i < 20_000; i++) {
    context.hashKey = keys[i % picks];
    balancer.release(balancer.pick(context)!, outcome);
  }
  // Minimum over a few rounds: a round can run before the JIT has optimised the pick (a busy
  // machine delays background compilation), and unoptimised code boxes every double.
  let best = Infinity;
  for (let round = 0; round < 4; round++) {
    gc();
    const before = Deno.memoryUsage().heapUsed;
    for (let i = 0; i < picks; i++) {
      context.hashKey = keys[i];
      balancer.release(balancer.pick(context)!, outcome);
    }
    best = Math.min(best, (Deno.memoryUsage().heapUsed - before) / picks);
  }
  return best;
}

if (import.meta.main) {
  console.log(bytesPerPick(JSON.parse(Deno.args[0]) as LoadBalancerConfig).toFixed(2));
}
