/**
 * @module
 * The demo's parts that tests use: its raw HTTP/1.1 client and its upstream service, in this
 * process or as a process of its own (to `kill -9`). Tests reach `demo/` only through this
 * file, so the demo can change with one place to follow.
 */
export { rawRequest, type RawResponse } from "../../demo/raw_http.ts";
export { serveDemoService } from "../../demo/upstream.ts";

const upstreamTs = new URL("../../demo/upstream.ts", import.meta.url).pathname;

/** A demo service running as a separate process on 127.0.0.1. */
export interface DemoProcess {
  pid: number;
  port: number;
  /** The instance name it answers with. */
  instance: string;
  /** SIGKILL (`kill -9`) and wait for the exit; safe to call again. */
  kill(): Promise<void>;
}

/** Starts `demo/upstream.ts` as a process on a free port; resolves once it listens. */
export async function startDemoProcess(
  name: string,
  instance: string,
  version = "v1",
  timeoutMs = 20_000,
): Promise<DemoProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", upstreamTs, name, instance, version, "0"],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
    env: { NO_COLOR: "1" },
  }).spawn();
  const exited = child.status;
  const kill = async () => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await exited;
  };
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${instance} did not start`)), timeoutMs);
    });
    let text = "";
    while (!text.includes("\n")) {
      const chunk = await Promise.race([reader.read(), timeout]);
      if (chunk.done) throw new Error(`${instance} exited before listening`);
      text += chunk.value;
    }
    const port = Number(/ on 127\.0\.0\.1:(\d+)/.exec(text)?.[1]);
    if (!(port > 0)) throw new Error(`${instance}: no port in ${JSON.stringify(text)}`);
    // Nothing else is printed; the stream is dropped so the process holds no reader of ours.
    await reader.cancel();
    return { pid: child.pid, port, instance, kill };
  } catch (err) {
    await reader.cancel().catch(() => {});
    await kill();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
