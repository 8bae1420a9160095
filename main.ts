/**
 * @module
 * The `weft` command: parses the command line (contract in docs/cli.md) and dispatches.
 * `weft agent` is wired in cli/agent.ts, the composition root of a node; the other commands
 * talk to a node's admin API. User errors exit 2 with one line; operational failures exit 1.
 */
import { errorMessage, UserError, VERSION } from "./lib/mod.ts";
import { OperationalError } from "./cli/admin_client.ts";
import { agentSpec } from "./cli/agent_flags.ts";
import { type CommandSpec, helpText, parseArgs } from "./cli/args.ts";
import { opsSpecs, runOps } from "./cli/ops.ts";
import {
  applyCommand,
  deleteCommand,
  getCommand,
  type ResourceCliEnv,
  resourceSpecs,
} from "./cli/resources.ts";

const resourceEnv: ResourceCliEnv = {
  admin: Deno.env.get("WEFT_ADMIN") || "127.0.0.1:15000",
  stdout: (line) => console.log(line),
  stderr: (line) => console.error(line),
};

const versionSpec: CommandSpec = {
  name: "version",
  usage: "weft version [-o json]",
  summary: "Print the Weft version, the Deno version and build information.",
  flags: [{ name: "output", short: "o", kind: "string", value: "FORMAT", help: "table or json" }],
};

const commands: { spec: CommandSpec; run: (argv: string[]) => Promise<number> }[] = [
  { spec: agentSpec, run: runAgent },
  ...Object.values(opsSpecs).map((spec) => ({
    spec,
    run: async (argv: string[]) => {
      console.log(await runOps(spec.name, parseArgs(spec, argv)));
      return 0;
    },
  })),
  { spec: resourceSpecs.apply, run: (argv) => applyCommand(argv, resourceEnv) },
  { spec: resourceSpecs.get, run: (argv) => getCommand(argv, resourceEnv) },
  { spec: resourceSpecs.delete, run: (argv) => deleteCommand(argv, resourceEnv) },
  { spec: versionSpec, run: runVersion },
];

async function runAgent(argv: string[]): Promise<number> {
  const args = parseArgs(agentSpec, argv);
  if (args.help) {
    console.log(helpText(agentSpec));
    return 0;
  }
  const { agentConfigFromArgs } = await import("./cli/agent_flags.ts");
  const config = agentConfigFromArgs(args);
  const { runAgentUntilSignal } = await import("./cli/agent.ts");
  return await runAgentUntilSignal(config, args);
}

function runVersion(argv: string[]): Promise<number> {
  const args = parseArgs(versionSpec, argv);
  const info = {
    version: VERSION,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    target: Deno.build.target,
    compiled: Deno.execPath().endsWith("/deno") ? false : true,
  };
  if (args.flags.get("output") === "json") console.log(JSON.stringify(info, null, 2));
  else {
    console.log(
      `weft ${info.version} (deno ${info.deno}, v8 ${info.v8}, typescript ${info.typescript}, ${info.target})`,
    );
  }
  return Promise.resolve(0);
}

function usage(): string {
  const width = Math.max(...commands.map((c) => c.spec.name.length)) + 2;
  return [
    "weft — a service mesh with no control plane",
    "",
    "Usage: weft COMMAND [flags]",
    "",
    "Commands:",
    ...commands.map((c) => `  ${c.spec.name.padEnd(width)}${c.spec.summary}`),
    `  ${"help".padEnd(width)}Show help for a command`,
    "",
    "Run 'weft COMMAND --help' for a command's flags.",
  ].join("\n");
}

/** Runs the CLI and returns the exit code; never throws. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h") {
    console.log(usage());
    return name ? 0 : 2;
  }
  if (name === "help") {
    const target = commands.find((c) => c.spec.name === rest[0]);
    console.log(target ? helpText(target.spec) : usage());
    return target || rest.length === 0 ? 0 : 2;
  }
  if (name === "--version") return runVersion([]);
  const command = commands.find((c) => c.spec.name === name);
  try {
    if (!command) throw new UserError(`unknown command "${name}" (run 'weft help')`);
    if (command !== commands[0] && (rest.includes("--help") || rest.includes("-h"))) {
      console.log(helpText(command.spec));
      return 0;
    }
    return await command.run(rest);
  } catch (err) {
    if (err instanceof UserError) {
      console.error(`weft: ${err.message}`);
      for (const d of err.details.slice(1)) console.error(`  ${d.path}: ${d.message}`);
      return 2;
    }
    if (err instanceof OperationalError) {
      console.error(`weft: ${err.message}`);
      return 1;
    }
    console.error(`weft: ${errorMessage(err)}`);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
