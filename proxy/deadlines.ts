/**
 * @module
 * Request deadlines without a timer per request. Every connection registers once; a request
 * sets its connection's `deadline` and calls {@linkcode DeadlineTicker.arm} with it. One
 * runtime timer, due at the earliest deadline it was armed for (at least `granularityMs` away),
 * scans the registered connections. Arming and clearing a runtime timer per request cost more
 * than parsing the request head (measured on bench/http_proxy.ts). A request that finishes in
 * time costs no wake-up: the timer is due at its deadline, long after it finished (a scan every
 * `granularityMs` while deadlines were set woke an idle-ish node about once per request).
 */
import { type Clock, DenseSet, type DenseSetMember, type TimerId } from "../lib/mod.ts";

/** Something with a deadline, told when it passes. */
export interface Expiring extends DenseSetMember {
  /** Monotonic milliseconds (Clock.now) after which `expire` is called; 0 for none. */
  deadline: number;
  expire(): void;
  /** Ends the work at once, whatever its deadline (the proxy is stopping). */
  abort(): void;
}

export class DeadlineTicker {
  /** A DenseSet, not a Set: connections churn (see lib/dense_set.ts). */
  readonly #tracked = new DenseSet<Expiring>();
  #timer: TimerId | undefined;
  /** When the armed timer is due (monotonic ms). */
  #due = 0;
  #closed = false;

  constructor(readonly clock: Clock, readonly granularityMs = 10) {}

  /** Registers an item (once per connection, not per request). */
  track(item: Expiring): void {
    this.#tracked.add(item);
  }

  untrack(item: Expiring): void {
    this.#tracked.delete(item);
  }

  /**
   * Makes sure a scan runs by `deadline` (monotonic ms), give or take `granularityMs`; call
   * after setting an item's deadline. Usually nothing to do: the timer is already due earlier.
   */
  arm(deadline: number): void {
    if (this.#closed || (this.#timer !== undefined && this.#due <= deadline + this.granularityMs)) {
      return;
    }
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    const now = this.clock.now();
    const delay = Math.max(this.granularityMs, deadline - now);
    this.#due = now + delay;
    this.#timer = this.clock.setTimeout(this.#tick, delay);
  }

  #tick = (): void => {
    this.#timer = undefined;
    const now = this.clock.now();
    let next = Infinity;
    for (const item of this.#tracked.values()) {
      const deadline = item.deadline;
      if (deadline === 0) continue;
      if (deadline <= now) {
        item.deadline = 0;
        item.expire();
      } else if (deadline < next) next = deadline;
    }
    if (next !== Infinity) this.arm(next);
  };

  /** Aborts every tracked item (the drain is over: nothing may keep the stop waiting). */
  abortAll(): void {
    for (const item of this.#tracked.values()) item.abort();
  }

  /** Stops the timer; pending deadlines never fire. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#tracked.clear();
  }
}
