/**
 * @module
 * A small, strict flag parser: every command declares its flags, and anything else is a
 * {@linkcode UserError} naming the flag. `--flag value`, `--flag=value`, short aliases and
 * repeatable flags are supported.
 */
import { UserError } from "../lib/mod.ts";

export interface FlagSpec {
  /** Long name without dashes, e.g. `data-dir`. */
  name: string;
  short?: string;
  kind: "string" | "boolean" | "list";
  /** Shown in `--help`: value placeholder and meaning. */
  value?: string;
  help: string;
  default?: string;
}

export interface CommandSpec {
  name: string;
  usage: string;
  summary: string;
  flags: FlagSpec[];
  /** Number of positional arguments allowed: [min, max]. */
  positionals?: [number, number];
}

export interface ParsedArgs {
  flags: Map<string, string | boolean | string[]>;
  positionals: string[];
  help: boolean;
}

/** Parses `argv` against `spec`; throws a UserError for unknown flags and missing values. */
export function parseArgs(spec: CommandSpec, argv: readonly string[]): ParsedArgs {
  const flags = new Map<string, string | boolean | string[]>();
  const positionals: string[] = [];
  let help = false;
  const byName = new Map(spec.flags.map((f) => [f.name, f]));
  const byShort = new Map(spec.flags.filter((f) => f.short).map((f) => [f.short!, f]));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--help" || arg === "-h") {
      help = true;
      continue;
    }
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    let name: string;
    let inline: string | undefined;
    let flag: FlagSpec | undefined;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
      flag = byName.get(name);
    } else {
      name = arg.slice(1);
      flag = byShort.get(name);
    }
    if (!flag) {
      throw new UserError(`unknown flag ${arg.split("=")[0]} for 'weft ${spec.name}' (see --help)`);
    }
    if (flag.kind === "boolean") {
      if (inline !== undefined && inline !== "true" && inline !== "false") {
        throw new UserError(`--${flag.name}: expected true or false, got "${inline}"`);
      }
      flags.set(flag.name, inline !== "false");
      continue;
    }
    let value = inline;
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UserError(`--${flag.name}: missing value`);
      value = argv[++i];
    }
    if (flag.kind === "list") {
      const prev = (flags.get(flag.name) as string[] | undefined) ?? [];
      flags.set(flag.name, [...prev, value]);
    } else {
      flags.set(flag.name, value);
    }
  }
  const [min, max] = spec.positionals ?? [0, 0];
  if (!help && positionals.length < min) {
    throw new UserError(`'weft ${spec.name}' needs more arguments: usage: ${spec.usage}`);
  }
  if (!help && positionals.length > max) {
    throw new UserError(
      `unexpected argument "${positionals[max]}" for 'weft ${spec.name}': usage: ${spec.usage}`,
    );
  }
  return { flags, positionals, help };
}

/** Renders `--help` text for a command. */
export function helpText(spec: CommandSpec): string {
  const lines = [`${spec.summary}`, "", `Usage: ${spec.usage}`, "", "Flags:"];
  const rows = spec.flags.map((f) => {
    const left = `${f.short ? `-${f.short}, ` : "    "}--${f.name}${f.value ? ` ${f.value}` : ""}`;
    const right = `${f.help}${f.default !== undefined ? ` (default: ${f.default})` : ""}`;
    return [left, right];
  });
  rows.push(["-h, --help", "show this help"]);
  const width = Math.max(...rows.map((r) => r[0].length)) + 2;
  for (const [l, r] of rows) lines.push(`  ${l.padEnd(width)}${r}`);
  return lines.join("\n");
}

export function stringFlag(args: ParsedArgs, name: string): string | undefined {
  const v = args.flags.get(name);
  return typeof v === "string" ? v : undefined;
}

export function boolFlag(args: ParsedArgs, name: string): boolean {
  return args.flags.get(name) === true;
}

export function listFlag(args: ParsedArgs, name: string): string[] {
  const v = args.flags.get(name);
  return Array.isArray(v) ? v : [];
}
