/**
 * @module
 * How a running agent answers signals: the first SIGINT or SIGTERM asks it to stop, and every
 * later one is logged and otherwise ignored, so the drain it started finishes and the process
 * exits 0. SIGHUP asks for a reload until a stop was asked for.
 *
 * Why later stop signals must be caught, not merely ignored by the handler: under
 * `deno task weft agent`, a SIGTERM sent to the process group reaches the agent twice (once
 * from the sender, once forwarded by the task runner), and an operator or supervisor may send
 * another while a drain takes its time. A signal without a listener takes the default action
 * and kills the process half-way through the drain (exit 143, no "node stopped").
 */
import type { Logger } from "../lib/mod.ts";

/** The part of `Deno` this module uses; a fake in tests. */
export interface SignalSource {
  addSignalListener(signal: Deno.Signal, handler: () => void): void;
  removeSignalListener(signal: Deno.Signal, handler: () => void): void;
}

/** The signals that stop an agent. */
export const stopSignals: readonly Deno.Signal[] = ["SIGINT", "SIGTERM"];

/** Options of {@linkcode handleAgentSignals}. */
export interface AgentSignalOptions {
  /** Called for each SIGHUP that arrives before a stop signal. */
  onReload: () => void;
  log: Logger;
  signals?: SignalSource;
}

/** Installed signal handlers. */
export interface AgentSignals {
  /** Resolves with the name of the first stop signal. */
  readonly stopRequested: Promise<Deno.Signal>;
  /**
   * Removes the handlers. An agent process does not call it: a stop signal that arrives
   * between the end of the drain and the process exit must not kill it either.
   */
  dispose(): void;
}

/** Installs the agent's signal handlers; they stay until {@linkcode AgentSignals.dispose}. */
export function handleAgentSignals(o: AgentSignalOptions): AgentSignals {
  const signals = o.signals ?? Deno;
  const { promise: stopRequested, resolve } = Promise.withResolvers<Deno.Signal>();
  let stopping: Deno.Signal | undefined;
  const handlers = new Map<Deno.Signal, () => void>();
  for (const signal of stopSignals) {
    handlers.set(signal, () => {
      if (stopping === undefined) {
        stopping = signal;
        resolve(signal);
      } else {
        o.log.info("already stopping; the drain continues", { signal, stoppingFor: stopping });
      }
    });
  }
  handlers.set("SIGHUP", () => {
    if (stopping === undefined) o.onReload();
    else o.log.info("stopping; reload ignored", { signal: "SIGHUP" });
  });
  for (const [signal, handler] of handlers) signals.addSignalListener(signal, handler);
  return {
    stopRequested,
    dispose() {
      for (const [signal, handler] of handlers) signals.removeSignalListener(signal, handler);
      handlers.clear();
    },
  };
}
