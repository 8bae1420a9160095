/**
 * @module
 * Structured logs: one JSON object per line on stderr, so they can be grepped and shipped.
 */

export type LogLevel = "debug" | "info" | "warn" | "error";

const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** A logger bound to a component name. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** A logger for a sub-component, sharing level and sink. */
  child(component: string): Logger;
  enabled(level: LogLevel): boolean;
}

/** Where log lines go; tests capture them. */
export type LogSink = (line: string) => void;

const encoder = new TextEncoder();
const stderrSink: LogSink = (line) => {
  try {
    Deno.stderr.writeSync(encoder.encode(line + "\n"));
  } catch {
    // stderr closed: logging must never take the node down.
  }
};

/** Creates a logger that writes JSON lines at or above `level`. */
export function createLogger(
  component: string,
  level: LogLevel = "info",
  sink: LogSink = stderrSink,
): Logger {
  const min = levelRank[level];
  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (levelRank[lvl] < min) return;
    sink(JSON.stringify({ ts: new Date().toISOString(), level: lvl, component, msg, ...fields }));
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (c) => createLogger(`${component}.${c}`, level, sink),
    enabled: (lvl) => levelRank[lvl] >= min,
  };
}

/** A logger that drops everything (tests, benchmarks). */
export const silentLogger: Logger = createLogger("silent", "error", () => {});
