/**
 * @module
 * The order a node stops in, and why: first whatever could start new work (seed join retries,
 * health checks, coalesced recompiles), so nothing reschedules during the shutdown; then
 * membership announces `left`, so peers stop routing here at once instead of waiting for
 * failure detection; then policy replication; then the proxy drains requests in flight; then
 * the store closes, after the last replicated write; the admin API goes last, so `weft status`
 * answers during the drain. The parts come in as small interfaces (lib/ imports neither
 * gossip/ nor the proxy); a part that never started is absent.
 */
import { errorMessage } from "./errors.ts";
import type { Logger } from "./log.ts";

/**
 * How long a leaving node waits for its `left` announcement to spread before it stops
 * membership anyway: long enough for a few gossip rounds, short enough not to delay a restart.
 */
export const leaveTimeoutMs = 2000;

/** The parts of a node that stop, each absent when it never started. */
export interface StoppingNode {
  /** Cancels timers and loops that would start new work (run first, in this order). */
  background: readonly (() => void)[];
  membership?: { leave(timeoutMs: number): Promise<void>; stop(): Promise<void> };
  replication?: { stop(): Promise<void> };
  proxy?: { stop(drainTimeoutMs: number): Promise<void> };
  store?: { close(): Promise<void> };
  admin?: { shutdown(): Promise<void> };
}

/**
 * Stops a node's parts in the order of the module doc. A `left` announcement that does not
 * complete is logged and the shutdown goes on (peers then detect the failure instead); any
 * other failure rejects.
 */
export async function stopNode(
  node: StoppingNode,
  o: { drainTimeoutMs: number; log: Logger },
): Promise<void> {
  for (const cancel of node.background) cancel();
  if (node.membership) {
    await node.membership.leave(leaveTimeoutMs).catch((err) =>
      o.log.warn("leave did not complete", { reason: errorMessage(err) })
    );
    await node.membership.stop();
  }
  await node.replication?.stop();
  await node.proxy?.stop(o.drainTimeoutMs);
  await node.store?.close();
  await node.admin?.shutdown();
}
