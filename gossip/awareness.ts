/**
 * @module
 * Lifeguard's local health awareness: a score that grows when this node misses acks or has to
 * refute suspicions, and stretches its own probe timeouts, so a slow node does not accuse
 * healthy peers (memberlist's awareness.go).
 */

/** Local health score in [0, max - 1]; 0 is healthy. */
export class Awareness {
  #score = 0;
  constructor(readonly maxMultiplier: number) {}

  /** Adds `delta` (may be negative), clamped to the valid range. */
  apply(delta: number): void {
    this.#score = Math.min(this.maxMultiplier - 1, Math.max(0, this.#score + delta));
  }

  get score(): number {
    return this.#score;
  }

  /** `timeout * (score + 1)`: a healthy node uses the configured timeout unchanged. */
  scale(timeoutMs: number): number {
    return timeoutMs * (this.#score + 1);
  }
}
