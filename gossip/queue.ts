/**
 * @module
 * Transmit-limited broadcast queue (memberlist's TransmitLimitedQueue): each update is
 * piggy-backed on about `mult * ceil(log10(n + 1))` outgoing packets, fewest-sent first, and a
 * newer update about a member replaces any older one still queued.
 */

interface QueuedBroadcast {
  /** Member the update is about; a newer update with the same key invalidates this one. */
  key: string;
  bytes: Uint8Array;
  transmits: number;
  /** Insertion order: among equally-sent items the newest goes first. */
  id: number;
}

/** Retransmit limit for a cluster of `n` members. */
export function retransmitLimit(mult: number, n: number): number {
  return mult * Math.ceil(Math.log10(n + 1));
}

/** Queue of encoded membership updates waiting to be piggy-backed. */
export class BroadcastQueue {
  #items: QueuedBroadcast[] = [];
  #nextId = 0;

  /**
   * @param retransmitMult memberlist's RetransmitMult
   * @param memberCount current cluster size (read on every call, since it changes)
   */
  constructor(
    private readonly retransmitMult: number,
    private readonly memberCount: () => number,
  ) {}

  /** Queues `bytes`, dropping any queued update with the same key. */
  enqueue(key: string, bytes: Uint8Array): void {
    this.#items = this.#items.filter((b) => b.key !== key);
    this.#items.push({ key, bytes, transmits: 0, id: this.#nextId++ });
  }

  get length(): number {
    return this.#items.length;
  }

  /** Transmits so far of the queued update for `key`, or undefined when none is queued. */
  transmitsOf(key: string): number | undefined {
    return this.#items.find((b) => b.key === key)?.transmits;
  }

  /** Drops everything (used on shutdown). */
  clear(): void {
    this.#items = [];
  }

  /**
   * Takes updates that fit in `limit` bytes, each counted as `overhead + length` bytes, and
   * counts one transmit for each; items that reached the retransmit limit leave the queue.
   */
  take(overhead: number, limit: number): Uint8Array[] {
    if (this.#items.length === 0) return [];
    const max = retransmitLimit(this.retransmitMult, this.memberCount());
    this.#items.sort((a, b) => a.transmits - b.transmits || b.id - a.id);
    const out: Uint8Array[] = [];
    let used = 0;
    for (const item of this.#items) {
      const cost = overhead + item.bytes.length;
      if (used + cost > limit) continue;
      used += cost;
      item.transmits++;
      out.push(item.bytes);
    }
    this.#items = this.#items.filter((b) => b.transmits < max);
    return out;
  }
}
