/**
 * @module
 * A signal source for tests of the agent's signal handling: listeners are kept in memory and
 * `send` delivers a signal to them, as the runtime would, without signalling the process.
 */
import type { SignalSource } from "../../cli/signals.ts";

/** Records listeners by signal; `send` calls them. */
export class FakeSignals implements SignalSource {
  readonly listeners = new Map<Deno.Signal, Set<() => void>>();
  addSignalListener(signal: Deno.Signal, handler: () => void): void {
    const set = this.listeners.get(signal) ?? new Set();
    set.add(handler);
    this.listeners.set(signal, set);
  }
  removeSignalListener(signal: Deno.Signal, handler: () => void): void {
    this.listeners.get(signal)?.delete(handler);
  }
  /** Delivers a signal; false when nothing listens (the process would take the default action). */
  send(signal: Deno.Signal): boolean {
    const set = this.listeners.get(signal);
    if (!set || set.size === 0) return false;
    for (const h of set) h();
    return true;
  }
}
