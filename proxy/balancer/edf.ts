/**
 * @module
 * Earliest-deadline-first schedule over endpoint indices, as Envoy's `EdfScheduler`: an entry
 * with weight w is due at `now + 1 / w`; popping the earliest advances `now` to its deadline.
 * Over many picks each index is chosen in proportion to its weight. A binary heap in typed
 * arrays, so picks allocate nothing; ties go to the entry scheduled first (FIFO).
 */

export class EdfSchedule {
  #heap = new Int32Array(0);
  #deadline = new Float64Array(0);
  #order = new Float64Array(0);
  #size = 0;
  #now = 0;
  #sequence = 0;

  /** Empties the schedule and sizes it for indices in [0, capacity). */
  reset(capacity: number): void {
    this.#heap = new Int32Array(capacity);
    this.#deadline = new Float64Array(capacity);
    this.#order = new Float64Array(capacity);
    this.#size = 0;
    this.#now = 0;
    this.#sequence = 0;
  }

  get size(): number {
    return this.#size;
  }

  /** Schedules `index` (not currently in the schedule) with `weight` > 0. */
  add(index: number, weight: number): void {
    this.#deadline[index] = this.#now + 1 / weight;
    this.#order[index] = this.#sequence++;
    let pos = this.#size++;
    const heap = this.#heap;
    while (pos > 0) {
      const parent = (pos - 1) >> 1;
      if (!this.#before(index, heap[parent])) break;
      heap[pos] = heap[parent];
      pos = parent;
    }
    heap[pos] = index;
  }

  /** Removes and returns the index with the earliest deadline; -1 when empty. */
  pop(): number {
    if (this.#size === 0) return -1;
    const heap = this.#heap;
    const top = heap[0];
    this.#now = this.#deadline[top];
    // Deadlines grow without bound; rebase them now and then so float64 keeps its precision.
    if (this.#now > 1e9) this.#rebase();
    const last = heap[--this.#size];
    const size = this.#size;
    let pos = 0;
    while (true) {
      let child = 2 * pos + 1;
      if (child >= size) break;
      if (child + 1 < size && this.#before(heap[child + 1], heap[child])) child++;
      if (!this.#before(heap[child], last)) break;
      heap[pos] = heap[child];
      pos = child;
    }
    if (size > 0) heap[pos] = last;
    return top;
  }

  #rebase(): void {
    const offset = this.#now;
    for (let i = 0; i < this.#deadline.length; i++) this.#deadline[i] -= offset;
    this.#now = 0;
  }

  #before(a: number, b: number): boolean {
    const da = this.#deadline[a];
    const db = this.#deadline[b];
    return da < db || (da === db && this.#order[a] < this.#order[b]);
  }
}
