/**
 * @module
 * Reusable per-connection byte buffers. Each client connection needs a read buffer (64 KiB) and
 * a head buffer (16 KiB). Allocated fresh, they are memory outside V8's heap that V8 still
 * accounts for: under connection churn (clients that close after each request) that is hundreds
 * of megabytes a second, and V8 answers with a full mark-compact every few tens of
 * milliseconds, each holding up every request in flight for several milliseconds. A closed
 * connection's buffers go back to a bounded free list and the next connection takes them.
 *
 * Buffers are handed out with the previous connection's bytes still in them: every reader and
 * writer here only exposes the bytes it has itself written (`[start, end)`, `[0, length)`).
 */

/** A bounded free list of buffers of one size. */
export class BufferPool {
  readonly #free: Uint8Array<ArrayBuffer>[] = [];

  /** `limit` bounds the memory kept idle: `size * limit` bytes at most. */
  constructor(readonly size: number, readonly limit: number) {}

  /** Free buffers kept right now. */
  get idle(): number {
    return this.#free.length;
  }

  /** A buffer of `size` bytes: a returned one when there is one, else a new one. */
  take(): Uint8Array<ArrayBuffer> {
    return this.#free.pop() ?? new Uint8Array(this.size);
  }

  /**
   * Takes `buf` back for another connection. The caller guarantees that nothing reads from or
   * writes into it any more (no read pending on it, no reference kept). A buffer that is not a
   * whole one of this pool's size (a grown or foreign one) is left to the garbage collector,
   * as are buffers beyond the limit.
   */
  give(buf: Uint8Array<ArrayBuffer>): void {
    if (
      buf.byteLength !== this.size || buf.byteOffset !== 0 ||
      buf.buffer.byteLength !== this.size || this.#free.length >= this.limit
    ) return;
    this.#free.push(buf);
  }
}
