/**
 * @module
 * Joining through seeds until one answers: hosts boot in any order, and a node started before
 * its seeds should not wait for the slower background re-join of membership. Each attempt is
 * one {@linkcode GossipNode.join} (itself a few quick tries); between attempts the wait
 * doubles from 1 s to at most 30 s. Time comes from a {@linkcode Clock}, so tests run the
 * schedule under a fake clock.
 */
import type { Clock, TimerId } from "../lib/clock.ts";
import { errorMessage } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";

/** Options of {@linkcode joinSeedsWithRetry}. */
export interface SeedJoinOptions {
  seeds: readonly string[];
  /** One join attempt: resolves with the number of seeds that answered, or rejects. */
  join: (seeds: readonly string[]) => Promise<number>;
  clock: Clock;
  log: Logger;
  /** Wait after the first failed attempt. */
  initialDelayMs?: number;
  /** Upper bound of the doubling wait. */
  maxDelayMs?: number;
}

/** How a seed join ended. */
export type SeedJoinOutcome =
  | { joined: true; seedsAnswered: number; attempt: number }
  | { joined: false; attempts: number };

/** A seed join in progress. */
export interface SeedJoin {
  /** Resolves when a seed answered or the join was cancelled; never rejects. */
  readonly done: Promise<SeedJoinOutcome>;
  /** Stops retrying (the node stops): a pending wait ends now, a running attempt is not retried. */
  cancel(): void;
}

/**
 * Starts joining through `seeds`, retrying with backoff until a seed answers or
 * {@linkcode SeedJoin.cancel}. The first failure is logged as an error (the operator should
 * see that the seeds did not answer), later ones at debug level.
 */
export function joinSeedsWithRetry(o: SeedJoinOptions): SeedJoin {
  const initialDelayMs = o.initialDelayMs ?? 1000;
  const maxDelayMs = o.maxDelayMs ?? 30_000;
  let cancelled = false;
  let wait: { timer: TimerId; resolve: () => void } | undefined;
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      wait = { timer: o.clock.setTimeout(resolve, ms), resolve };
    }).finally(() => (wait = undefined));

  const run = async (): Promise<SeedJoinOutcome> => {
    let delayMs = initialDelayMs;
    let attempt = 0;
    while (!cancelled) {
      attempt++;
      try {
        const seedsAnswered = await o.join(o.seeds);
        o.log.info("joined the cluster", { seedsAnswered, attempt });
        return { joined: true, seedsAnswered, attempt };
      } catch (err) {
        if (cancelled) break;
        const log = attempt === 1 ? o.log.error : o.log.debug;
        log(`${errorMessage(err)}; retrying in ${delayMs} ms`);
      }
      await sleep(delayMs);
      delayMs = Math.min(delayMs * 2, maxDelayMs);
    }
    return { joined: false, attempts: attempt };
  };

  return {
    done: run(),
    cancel() {
      cancelled = true;
      if (wait) {
        o.clock.clearTimeout(wait.timer);
        wait.resolve();
      }
    },
  };
}
