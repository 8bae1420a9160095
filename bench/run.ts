/**
 * @module
 * `deno task bench [NAME…]`: runs the benchmarks one after another in the foreground (each
 * starts and stops its own processes). Names: http_proxy, request_path, membership,
 * policy_propagation, routing, compile, idle_connections. Without names, all of them.
 */
import { ensureCommands } from "./support.ts";
const all = [
  "http_proxy",
  "request_path",
  "routing",
  "compile",
  "idle_connections",
  "membership",
  "policy_propagation",
];
const chosen = Deno.args.length > 0 ? Deno.args : all;
const missing = await ensureCommands({ wrk: "wrk", nginx: "nginx-light", serf: "serf" });
if (missing.length > 0) {
  console.error(`bench: still missing ${missing.join(", ")}; some figures will be skipped`);
}
let failed = 0;
for (const name of chosen) {
  if (!all.includes(name)) {
    console.error(`bench: unknown benchmark "${name}"; choose from ${all.join(", ")}`);
    Deno.exit(2);
  }
  console.log(`\n=== bench/${name}.ts ===`);
  const script = new URL(`./${name}.ts`, import.meta.url).pathname;
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", script],
    stdout: "inherit",
    stderr: "inherit",
    stdin: "null",
  }).output();
  if (code !== 0) {
    console.error(`bench/${name}.ts exited with ${code}`);
    failed++;
  }
}
Deno.exit(failed > 0 ? 1 : 0);
