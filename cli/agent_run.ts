/**
 * @module
 * The lifetime of an agent process: start the node, wait for a stop signal, drain, exit.
 * Signal handlers go in before the start, so a stop signal during the start stops the node
 * once it is up instead of killing it half-started; SIGHUP reloads, and a rejected reload
 * keeps the running config. Exit codes follow the CLI contract: 0 after a drain (however many
 * stop signals arrived during it, see signals.ts), 1 when a listener cannot be opened.
 */
import { errorMessage, ListenError, type Logger } from "../lib/mod.ts";
import { handleAgentSignals, type SignalSource } from "./signals.ts";

/** What the run needs of a node (cli/agent.ts's Agent; a fake in tests). */
export interface RunnableAgent {
  readonly log: Logger;
  start(): Promise<unknown>;
  reload(): Promise<unknown>;
  stop(): Promise<void>;
}

/** Where the run's outside world is; the process's by default, fakes in tests. */
export interface AgentRunEnvironment {
  signals?: SignalSource;
  /** Prints the one-line reason a start failed (stderr). */
  printError?: (line: string) => void;
}

/** Runs `agent` until SIGINT or SIGTERM and returns the process exit code. */
export async function runUntilStopSignal(
  agent: RunnableAgent,
  env: AgentRunEnvironment = {},
): Promise<number> {
  const signals = handleAgentSignals({
    log: agent.log,
    signals: env.signals,
    onReload: () => {
      agent.reload().catch((err) =>
        agent.log.error("reload rejected; keeping the running config", {
          reason: errorMessage(err),
        })
      );
    },
  });
  try {
    await agent.start();
  } catch (err) {
    if (err instanceof ListenError) {
      (env.printError ?? console.error)(`weft: ${err.message}`);
      return 1;
    }
    throw err;
  }
  const signal = await signals.stopRequested;
  agent.log.info("stopping", { signal });
  await agent.stop();
  return 0;
}
