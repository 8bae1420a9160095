/**
 * @module
 * Lifeguard suspicion timer (memberlist's suspicion.go): a suspect is declared dead after a
 * timeout that starts at `max` and shrinks toward `min` logarithmically as independent members
 * confirm the suspicion, so a real failure is declared quickly and a lone false accusation
 * leaves the suspect plenty of time to refute.
 */
import type { Clock, TimerId } from "../lib/clock.ts";

/** Minimum suspicion timeout: `mult * log10(max(1, n)) * interval`, at least one interval. */
export function suspicionTimeoutMs(mult: number, n: number, intervalMs: number): number {
  const scale = Math.max(1, Math.log10(Math.max(1, n)));
  return mult * scale * intervalMs;
}

/** Timeout after `confirmations` of `expected`: interpolates max -> min in log space. */
export function remainingSuspicionMs(
  confirmations: number,
  expected: number,
  minMs: number,
  maxMs: number,
): number {
  if (expected <= 0) return minMs;
  const frac = Math.log(confirmations + 1) / Math.log(expected + 1);
  return Math.max(minMs, Math.floor(maxMs - frac * (maxMs - minMs)));
}

/** One running suspicion about one member. */
export class Suspicion {
  readonly #confirmers = new Set<string>();
  readonly #start: number;
  #timer: TimerId;
  #fired = false;

  constructor(
    private readonly clock: Clock,
    from: string,
    private readonly expected: number,
    private readonly minMs: number,
    private readonly maxMs: number,
    private readonly onTimeout: (confirmations: number) => void,
  ) {
    // The accuser is not a confirmation; it only starts the clock.
    this.#confirmers.add(from);
    this.#start = clock.now();
    const first = expected > 0 ? maxMs : minMs;
    this.#timer = clock.setTimeout(() => this.#fire(), first);
  }

  /** Number of independent confirmations so far. */
  get confirmations(): number {
    return this.#confirmers.size - 1;
  }

  /**
   * Records a confirmation from `from`. Returns true when it was new (the caller then
   * re-gossips the suspicion so more members can confirm).
   */
  confirm(from: string): boolean {
    if (this.#fired || this.confirmations >= this.expected || this.#confirmers.has(from)) {
      return false;
    }
    this.#confirmers.add(from);
    const timeout = remainingSuspicionMs(this.confirmations, this.expected, this.minMs, this.maxMs);
    const left = timeout - (this.clock.now() - this.#start);
    this.clock.clearTimeout(this.#timer);
    if (left > 0) this.#timer = this.clock.setTimeout(() => this.#fire(), left);
    else this.#timer = this.clock.setTimeout(() => this.#fire(), 0);
    return true;
  }

  /** Stops the timer (the suspect refuted, or the member died by another path). */
  cancel(): void {
    this.#fired = true;
    this.clock.clearTimeout(this.#timer);
  }

  #fire(): void {
    if (this.#fired) return;
    this.#fired = true;
    this.onTimeout(this.confirmations);
  }
}
