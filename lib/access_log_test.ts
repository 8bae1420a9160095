/**
 * @module
 * The access-log writer with an in-memory writer: JSON lines with a timestamp, batching, the
 * backlog bound (dropped lines counted), partial writes, and a failing writer.
 */
import { assertEquals, assertMatch } from "../tests/support/assert.ts";
import { FakeClock } from "./clock.ts";
import { Registry } from "./metrics.ts";
import { accessLogDroppedMetric, accessLogWriter, type ByteWriter } from "./access_log.ts";

/** A writer that records what it got; while `held`, each write waits for `release()`. */
function recordingWriter(maxPerWrite = Infinity) {
  const decoder = new TextDecoder();
  const chunks: string[] = [];
  let gate = Promise.withResolvers<void>();
  let held = false;
  const write: ByteWriter = async (chunk) => {
    if (held) await gate.promise;
    const n = Math.min(chunk.length, maxPerWrite);
    chunks.push(decoder.decode(chunk.subarray(0, n)));
    return n;
  };
  return {
    write,
    chunks,
    text: () => chunks.join(""),
    hold: () => (held = true),
    release: () => {
      held = false;
      gate.resolve();
      gate = Promise.withResolvers<void>();
    },
  };
}

/** Lets queued microtasks (the writer's flush) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

function dropped(metrics: Registry): string | undefined {
  return metrics.render().split("\n").find((l) => l.startsWith(accessLogDroppedMetric));
}

Deno.test("each entry is one JSON line, its timestamp first", async () => {
  const out = recordingWriter();
  const clock = new FakeClock();
  const log = accessLogWriter<{ status: number; path: string }>({
    metrics: new Registry(),
    write: out.write,
    clock,
  });
  log({ status: 200, path: "/a" });
  clock.advance(1500);
  log({ status: 404, path: "/b" });
  await settle();
  assertEquals(
    out.text(),
    [
      '{"ts":"2023-11-14T22:13:20.000Z","status":200,"path":"/a"}',
      '{"ts":"2023-11-14T22:13:21.500Z","status":404,"path":"/b"}',
      "",
    ].join("\n"),
  );
});

Deno.test("entries logged together are written in one write, after the caller returns", async () => {
  const out = recordingWriter();
  const log = accessLogWriter<{ n: number }>({ metrics: new Registry(), write: out.write });
  for (let n = 0; n < 5; n++) log({ n });
  assertEquals(out.chunks.length, 0, "the caller never waits for the write");
  await settle();
  assertEquals(out.chunks.length, 1);
  assertEquals(out.text().trim().split("\n").map((l) => JSON.parse(l).n), [0, 1, 2, 3, 4]);
});

Deno.test("above the backlog bound lines are dropped and counted, not buffered", async () => {
  const out = recordingWriter();
  const metrics = new Registry();
  const log = accessLogWriter<{ n: number }>({ metrics, write: out.write, maxBacklog: 100 });
  out.hold();
  log({ n: 0 });
  await settle(); // the first flush now waits in the writer
  for (let n = 1; n <= 20; n++) log({ n }); // each line is ~40 characters: 3 fit the bound
  out.release();
  await settle();
  const written = out.text().trim().split("\n").map((l) => JSON.parse(l).n);
  assertEquals(written, [0, 1, 2, 3]);
  assertEquals(dropped(metrics), `${accessLogDroppedMetric} 17`);
});

Deno.test("a writer that takes part of a chunk gets the rest", async () => {
  const out = recordingWriter(7);
  const log = accessLogWriter<{ path: string }>({ metrics: new Registry(), write: out.write });
  log({ path: "/a-fairly-long-path" });
  await settle();
  await settle();
  assertMatch(out.text(), /^\{"ts":"[^"]+","path":"\/a-fairly-long-path"\}\n$/);
});

Deno.test("a failing writer neither throws to the caller nor stops later lines", async () => {
  let fail = true;
  const lines: string[] = [];
  const log = accessLogWriter<{ n: number }>({
    metrics: new Registry(),
    write: (chunk) => {
      if (fail) return Promise.reject(new Error("Broken pipe"));
      lines.push(new TextDecoder().decode(chunk));
      return Promise.resolve(chunk.length);
    },
  });
  log({ n: 1 });
  await settle();
  fail = false;
  log({ n: 2 });
  await settle();
  assertEquals(lines.join("").trim().split("\n").map((l) => JSON.parse(l).n), [2]);
});
