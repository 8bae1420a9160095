/**
 * @module
 * `weft agent` flags and how they, the config file and the environment merge into one
 * validated {@linkcode NodeConfig} (file < flags).
 */
import { parseYaml } from "../lib/yaml.ts";
import {
  type HostPort,
  type LocalService,
  type NodeConfig,
  parseHostPort,
  parseNodeConfig,
  parseServiceSpec,
  parseUpstreamSpec,
  type Upstream,
  UserError,
} from "../lib/mod.ts";
import { type CommandSpec, listFlag, type ParsedArgs, stringFlag } from "./args.ts";

export const agentSpec: CommandSpec = {
  name: "agent",
  usage: "weft agent [--config FILE] [--join HOST:PORT] [--service NAME=PORT[,k=v…]] [flags]",
  summary: "Run a Weft node: proxy for local services, gossip member and policy store replica.",
  flags: [
    {
      name: "config",
      kind: "string",
      value: "FILE",
      help: "YAML or JSON node config; flags override it",
    },
    { name: "name", kind: "string", value: "NAME", help: "node name", default: "hostname" },
    {
      name: "data-dir",
      kind: "string",
      value: "DIR",
      help: "persistent state directory",
      default: "./weft-data",
    },
    {
      name: "admin-addr",
      kind: "string",
      value: "HOST:PORT",
      help: "admin HTTP API, /metrics, dashboard",
      default: "127.0.0.1:15000",
    },
    {
      name: "outbound-addr",
      kind: "string",
      value: "HOST:PORT",
      help: "listener for local applications",
      default: "127.0.0.1:15001",
    },
    {
      name: "inbound-addr",
      kind: "string",
      value: "HOST:PORT",
      help: "listener for other nodes",
      default: "0.0.0.0:15006",
    },
    {
      name: "gossip-addr",
      kind: "string",
      value: "HOST:PORT",
      help: "SWIM membership, UDP and TCP",
      default: "0.0.0.0:7946",
    },
    {
      name: "p2p-addr",
      kind: "string",
      value: "HOST:PORT",
      help: "libp2p policy replication",
      default: "0.0.0.0:7947",
    },
    {
      name: "advertise-addr",
      kind: "string",
      value: "HOST",
      help: "address other nodes use to reach this one",
      default: "derived",
    },
    {
      name: "join",
      kind: "list",
      value: "HOST:PORT[,…]",
      help: "seed gossip addresses (repeatable)",
    },
    {
      name: "service",
      kind: "list",
      value: "SPEC",
      help: "local service NAME=PORT[,protocol=http][,check=/path][,key=value…] (repeatable)",
    },
    {
      name: "upstream",
      kind: "list",
      value: "SERVICE=PORT",
      help: "offer mesh SERVICE as a local TCP port (0: any free port; repeatable)",
    },
    {
      name: "encrypt-key",
      kind: "string",
      value: "BASE64",
      help: "gossip encryption key (AES-256-GCM, 32 bytes)",
    },
    {
      name: "keyring",
      kind: "string",
      value: "FILE",
      help: "gossip keyring file: base64 keys, one per line, primary first",
    },
    {
      name: "gossip-profile",
      kind: "string",
      value: "PROFILE",
      help: "membership timings: lan, wan or local (loopback)",
      default: "lan",
    },
    {
      name: "access-log",
      kind: "boolean",
      help: "write one JSON line per proxied request to stdout",
    },
    {
      name: "log-level",
      kind: "string",
      value: "LEVEL",
      help: "debug, info, warn or error",
      default: "info",
    },
  ],
};

/** Reads a YAML or JSON config file into a plain object; errors name the file. */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (err) {
    throw new UserError(
      `--config: cannot read "${path}": ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  let value: unknown;
  try {
    value = /\.json$/i.test(path) ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    const msg = err instanceof Error ? err.message.split("\n")[0] : String(err);
    throw new UserError(
      `--config: "${path}" is not valid ${/\.json$/i.test(path) ? "JSON" : "YAML"}: ${msg}`,
    );
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new UserError(`--config: "${path}" must hold a mapping of settings`);
  }
  return value as Record<string, unknown>;
}

const flagToField: Record<string, string> = {
  "name": "name",
  "data-dir": "dataDir",
  "admin-addr": "adminAddr",
  "outbound-addr": "outboundAddr",
  "inbound-addr": "inboundAddr",
  "gossip-addr": "gossipAddr",
  "p2p-addr": "p2pAddr",
  "advertise-addr": "advertiseAddr",
  "encrypt-key": "encryptKey",
  "log-level": "logLevel",
  "keyring": "keyringFile",
};

/** Builds the node config from `--config` and flags; throws UserError naming the flag. */
export function agentConfigFromArgs(args: ParsedArgs): NodeConfig {
  const configPath = stringFlag(args, "config");
  const raw: Record<string, unknown> = configPath ? readConfigFile(configPath) : {};
  for (const [flag, field] of Object.entries(flagToField)) {
    const v = stringFlag(args, flag);
    if (v !== undefined) raw[field] = v;
  }
  const joins = listFlag(args, "join").flatMap((j) => j.split(",")).map((s) => s.trim()).filter(
    Boolean,
  );
  if (joins.length > 0) raw.join = joins;
  if (args.flags.has("access-log")) raw.accessLog = args.flags.get("access-log") === true;
  const profile = stringFlag(args, "gossip-profile");
  if (profile !== undefined) {
    raw.gossip = { ...(raw.gossip as Record<string, unknown> | undefined), profile };
  }
  const specs = listFlag(args, "service");
  if (specs.length > 0) {
    const services: LocalService[] = [];
    for (const spec of specs) {
      const s = parseServiceSpec(spec);
      if (typeof s === "string") throw new UserError(`--service: ${s}`);
      services.push(s);
    }
    raw.services = services;
  }
  const upstreamSpecs = listFlag(args, "upstream");
  if (upstreamSpecs.length > 0) {
    const upstreams: Upstream[] = [];
    for (const spec of upstreamSpecs) {
      const u = parseUpstreamSpec(spec);
      if (typeof u === "string") throw new UserError(`--upstream: ${u}`);
      upstreams.push(u);
    }
    raw.upstreams = upstreams;
  }
  // Name flags, not config paths, when the value came from a flag.
  try {
    return parseNodeConfig(raw, configPath ? `config ${configPath}` : "flags");
  } catch (err) {
    if (err instanceof UserError && err.details.length > 0) {
      const field = err.details[0].path.split(/[.[]/)[0];
      const flag = Object.entries(flagToField).find(([, f]) => f === field)?.[0] ??
        ({
          join: "join",
          services: "service",
          upstreams: "upstream",
          gossip: "gossip-profile",
        } as Record<string, string>)[
          field
        ];
      if (flag && args.flags.has(flag)) {
        throw new UserError(`--${flag}: ${err.details[0].message}`, err.details);
      }
    }
    throw err;
  }
}

/** A `HOST:PORT` flag or config value; a malformed one is the user's to fix. */
export function addressFlag(value: string): HostPort {
  const r = parseHostPort(value);
  if (typeof r === "string") throw new UserError(r);
  return r;
}
