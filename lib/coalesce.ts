/**
 * @module
 * Coalescing bursts: many {@linkcode Coalescer.schedule} calls within `delayMs` run the
 * action once. The agent uses it so that a join of many members costs one snapshot recompile,
 * and a burst of store changes one metadata update (each is an incarnation bump gossiped to
 * every member).
 */
import type { Clock, TimerId } from "./clock.ts";

/** Runs an action once per burst of requests. */
export class Coalescer {
  #timer?: TimerId;

  constructor(
    private readonly clock: Clock,
    private readonly delayMs: number,
    private readonly action: () => void,
  ) {}

  /** Runs the action `delayMs` from the first request not yet served; later ones join it. */
  schedule(): void {
    if (this.#timer !== undefined) return;
    this.#timer = this.clock.setTimeout(() => {
      this.#timer = undefined;
      this.action();
    }, this.delayMs);
  }

  /** Drops a scheduled run (the owner stops). */
  cancel(): void {
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
