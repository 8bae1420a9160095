/**
 * @module
 * The V8 flags every Weft agent runs with. `deno task weft`, `compile.sh` (baked into the
 * binary), the demo, the tests' agents and the benchmarks' proxies all pass them; a test checks
 * that the shell launchers say the same. They cannot be set from inside the program: V8 reads
 * them when the isolate starts.
 *
 * `--no-allocation-site-pretenuring`: V8 watches how many objects from each literal survive a
 * young-generation GC and, past a threshold, allocates that literal's objects straight in the old
 * generation. A proxy's per-connection state (request heads, plans, pending reads) survives when
 * a connection lives long and dies at once when it does not; once pretenured, every short-lived
 * connection's objects sit in the old generation and keep what they point to alive through each
 * young GC until the next full GC. With clients that close after each request, 10% of young
 * allocations survived and scavenges took 3-8 ms; without pretenuring, 0.15% and 0.3 ms, and p99
 * went from 8 to 3.8 ms. Keep-alive throughput and latency did not change (bench/http_proxy.ts).
 */
export const agentV8Flags = ["--no-allocation-site-pretenuring"];

/** The flags as one `deno run`/`deno compile` argument. */
export const agentV8FlagsArg = `--v8-flags=${agentV8Flags.join(",")}`;
