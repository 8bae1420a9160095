/**
 * @module
 * Request deadlines without a timer per request. Every connection registers once; a request
 * sets its connection's `deadline` and calls {@linkcode DeadlineTicker.arm}. One coarse timer
 * scans the registered connections every `granularityMs` while any deadline is set. Arming
 * and clearing a runtime timer per request cost more than parsing the request head (measured
 * on bench/http_proxy.ts); a timeout fires at most `granularityMs` late.
 */
import type { Clock, TimerId } from "../lib/mod.ts";

/** Something with a deadline, told when it passes. */
export interface Expiring {
  /** Monotonic milliseconds (Clock.now) after which `expire` is called; 0 for none. */
  deadline: number;
  expire(): void;
}

export class DeadlineTicker {
  readonly #tracked = new Set<Expiring>();
  #timer: TimerId | undefined;
  #closed = false;

  constructor(readonly clock: Clock, readonly granularityMs = 10) {}

  /** Registers an item (once per connection, not per request). */
  track(item: Expiring): void {
    this.#tracked.add(item);
  }

  untrack(item: Expiring): void {
    this.#tracked.delete(item);
  }

  /** Makes sure the scan runs; call after setting a deadline. */
  arm(): void {
    if (this.#timer === undefined && !this.#closed) {
      this.#timer = this.clock.setTimeout(this.#tick, this.granularityMs);
    }
  }

  #tick = (): void => {
    this.#timer = undefined;
    const now = this.clock.now();
    let pending = false;
    for (const item of this.#tracked) {
      const deadline = item.deadline;
      if (deadline === 0) continue;
      if (deadline <= now) {
        item.deadline = 0;
        item.expire();
      } else pending = true;
    }
    if (pending) this.arm();
  };

  /** Stops the timer; pending deadlines never fire. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#tracked.clear();
  }
}
