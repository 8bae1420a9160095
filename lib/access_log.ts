/**
 * @module
 * The access-log writer: one JSON line per entry (`ts` first, then the entry's fields), for
 * stdout. Lines are batched and written asynchronously, so a slow reader of stdout never
 * blocks a request; above a backlog bound (4 MiB by default) lines are dropped and counted in
 * `weft_access_log_dropped_total` rather than buffered without bound. A failed write (stdout
 * closed) discards the backlog: logging must not take the node down.
 */
import type { Clock } from "./clock.ts";
import type { Registry } from "./metrics.ts";

/** Where the lines go; returns how many bytes it took, as `Deno.stdout.write` does. */
export type ByteWriter = (chunk: Uint8Array) => Promise<number>;

/** Options of {@linkcode accessLogWriter}. */
export interface AccessLogWriterOptions {
  metrics: Registry;
  /** Default: stdout. */
  write?: ByteWriter;
  /** For the `ts` field (wall clock). */
  clock?: Pick<Clock, "wallNow">;
  /** Backlog, in characters, above which lines are dropped. */
  maxBacklog?: number;
}

/** Metric counting lines dropped at the backlog bound. */
export const accessLogDroppedMetric = "weft_access_log_dropped_total";

/** Returns the function the proxy calls once per finished request or connection. */
export function accessLogWriter<Entry extends object>(
  o: AccessLogWriterOptions,
): (entry: Entry) => void {
  const write: ByteWriter = o.write ?? ((chunk) => Deno.stdout.write(chunk));
  const wallNow = o.clock ? () => o.clock!.wallNow() : () => Date.now();
  const maxBacklog = o.maxBacklog ?? 4 * 1024 * 1024;
  const encoder = new TextEncoder();
  const dropped = o.metrics.counter(
    accessLogDroppedMetric,
    "Access-log lines dropped because stdout did not keep up.",
  ).with();
  let pending: string[] = [];
  let pendingChars = 0;
  let writing = false;
  let scheduled = false;
  const flush = async () => {
    scheduled = false;
    if (writing) return; // the running flush drains what was added meanwhile
    writing = true;
    try {
      while (pending.length > 0) {
        const chunk = encoder.encode(pending.join(""));
        pending = [];
        pendingChars = 0;
        for (let off = 0; off < chunk.length;) off += await write(chunk.subarray(off));
      }
    } catch {
      pending = [];
      pendingChars = 0;
    } finally {
      writing = false;
    }
  };
  return (entry) => {
    if (pendingChars > maxBacklog) {
      dropped.inc();
      return;
    }
    const line = JSON.stringify({ ts: new Date(wallNow()).toISOString(), ...entry }) + "\n";
    pending.push(line);
    pendingChars += line.length;
    if (!writing && !scheduled) {
      scheduled = true;
      queueMicrotask(flush);
    }
  };
}
