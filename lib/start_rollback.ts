/**
 * @module
 * Undoing a start that failed half way: each part, once started, records how to stop it, and
 * a failed start stops exactly those, newest first (a part may depend on an older one, as the
 * proxy's snapshot does on the store), before the start's error is rethrown.
 */
import { errorMessage } from "./errors.ts";
import type { Logger } from "./log.ts";

/** How to stop one started part. */
export type StopPart = () => Promise<void> | void;

/** The parts started so far. */
export class StartedParts {
  readonly #stops: StopPart[] = [];

  constructor(private readonly log: Logger) {}

  /** Records how to stop a part that has just started. */
  add(stop: StopPart): void {
    this.#stops.push(stop);
  }

  /**
   * Stops every recorded part, newest first. A part that fails to stop is logged and the
   * others still stop: the caller rethrows the start's error, which says what went wrong.
   */
  async stopAll(): Promise<void> {
    for (const stop of this.#stops.splice(0).reverse()) {
      try {
        await stop();
      } catch (err) {
        this.log.warn("stopping a started part failed", { reason: errorMessage(err) });
      }
    }
  }
}
