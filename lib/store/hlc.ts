/**
 * @module
 * Hybrid logical clock (Kulkarni et al., 2014): timestamps that follow wall-clock time when
 * clocks are sane, yet never go backwards and always order a received event after the event
 * that caused it. Last-writer-wins in the policy store compares these, then the node id.
 */
import type { Clock } from "../clock.ts";

/** A hybrid timestamp: wall milliseconds plus a counter for events within the same ms. */
export interface HlcTimestamp {
  readonly wall: number;
  readonly logical: number;
}

/** Orders two timestamps: negative, zero or positive. */
export function compareHlc(a: HlcTimestamp, b: HlcTimestamp): number {
  return a.wall !== b.wall ? a.wall - b.wall : a.logical - b.logical;
}

/** Compact, sortable text form (`1700000000000.0003`), for logs and the admin API. */
export function formatHlc(t: HlcTimestamp): string {
  return `${t.wall}.${String(t.logical).padStart(4, "0")}`;
}

/** A hybrid logical clock bound to a {@linkcode Clock}'s wall time. */
export class HybridLogicalClock {
  #last: HlcTimestamp = { wall: 0, logical: 0 };

  constructor(private readonly clock: Clock) {}

  /** The last timestamp issued or observed. */
  get last(): HlcTimestamp {
    return this.#last;
  }

  /** A new timestamp for a local event, strictly greater than every earlier one. */
  now(): HlcTimestamp {
    const physical = this.clock.wallNow();
    const last = this.#last;
    this.#last = physical > last.wall
      ? { wall: physical, logical: 0 }
      : { wall: last.wall, logical: last.logical + 1 };
    return this.#last;
  }

  /**
   * Folds in a timestamp received from another node, so that the next local event orders
   * after it even if this node's wall clock is behind.
   */
  observe(remote: HlcTimestamp): HlcTimestamp {
    const physical = this.clock.wallNow();
    const last = this.#last;
    const wall = Math.max(physical, last.wall, remote.wall);
    let logical: number;
    if (wall === last.wall && wall === remote.wall) {
      logical = Math.max(last.logical, remote.logical) + 1;
    } else if (wall === last.wall) logical = last.logical + 1;
    else if (wall === remote.wall) logical = remote.logical + 1;
    else logical = 0;
    this.#last = { wall, logical };
    return this.#last;
  }
}
