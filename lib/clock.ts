/**
 * @module
 * Time as a dependency: everything timed takes a {@linkcode Clock}, so whole clusters can run
 * under a fake clock in tests.
 */

/** A handle returned by {@linkcode Clock.setTimeout}. */
export type TimerId = number;

/** Source of time and timers. */
export interface Clock {
  /** Milliseconds since an arbitrary epoch; monotonic. */
  now(): number;
  /** Wall-clock milliseconds since the Unix epoch (for timestamps shown to people). */
  wallNow(): number;
  setTimeout(fn: () => void, ms: number): TimerId;
  clearTimeout(id: TimerId): void;
}

/** The real clock, backed by `performance.now()` and the runtime's timers. */
export const realClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  // Node typings (pulled in by npm packages) widen the id type; the runtime returns a number.
  setTimeout: (fn, ms) => setTimeout(fn, ms) as unknown as TimerId,
  clearTimeout: (id) => clearTimeout(id),
};

/**
 * A manual clock for deterministic tests: time moves only when {@linkcode FakeClock.advance}
 * is called, and due timers fire in order of their deadline.
 */
export class FakeClock implements Clock {
  #now = 0;
  #nextId = 1;
  #timers = new Map<TimerId, { at: number; seq: number; fn: () => void }>();
  #seq = 0;

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  wallNow(): number {
    return 1_700_000_000_000 + this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerId {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn });
    return id;
  }

  clearTimeout(id: TimerId): void {
    this.#timers.delete(id);
  }

  /** Number of timers that have not fired yet. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in deadline order. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (let fired = 0; fired < 10_000_000; fired++) {
      let nextId: TimerId | undefined;
      let next: { at: number; seq: number; fn: () => void } | undefined;
      for (const [id, t] of this.#timers) {
        if (t.at <= end && (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq))) {
          next = t;
          nextId = id;
        }
      }
      if (!next || nextId === undefined) break;
      this.#timers.delete(nextId);
      this.#now = next.at;
      next.fn();
    }
    this.#now = end;
  }
}
