/**
 * @module
 * Fault injection (Istio `fault`, Envoy's fault filter): a fixed delay and/or a local abort,
 * each applied to `percentage`% of requests, decided independently. As in Envoy, the delay
 * happens first and does not count towards the route timeout; the abort is answered locally
 * with flag `FI` (a delay alone sets `DI`). An unset percentage injects nothing (Istio's
 * behaviour since istio/api#2522; the compiler stores 0 then).
 */
import type { RouteFault } from "../../lib/mod.ts";

/** What to inject into one request. */
export interface FaultDecision {
  /** 0: no delay. */
  delayMs: number;
  /** 0: no abort. */
  abortStatus: number;
}

/** True with probability `percentage`/100; `random` is in [0, 1). */
export function percentHit(percentage: number, random: number): boolean {
  return percentage > 0 && random * 100 < percentage;
}

/**
 * Decides the faults of one request into `out` (reused per connection). `randomDelay` and
 * `randomAbort` are independent uniform draws in [0, 1). Returns whether anything applies.
 */
export function decideFault(
  fault: RouteFault | undefined,
  randomDelay: number,
  randomAbort: number,
  out: FaultDecision,
): boolean {
  out.delayMs = 0;
  out.abortStatus = 0;
  if (!fault) return false;
  if (
    fault.delay && fault.delay.fixedDelayMs > 0 && percentHit(fault.delay.percentage, randomDelay)
  ) {
    out.delayMs = fault.delay.fixedDelayMs;
  }
  if (fault.abort && percentHit(fault.abort.percentage, randomAbort)) {
    out.abortStatus = fault.abort.httpStatus;
  }
  return out.delayMs > 0 || out.abortStatus > 0;
}
