/**
 * @module
 * Read-only operating commands: `weft members`, `weft services`, `weft routes`,
 * `weft status`. Each prints a table, or the admin API's JSON with `-o json`.
 */
import { UserError } from "../lib/mod.ts";
import type {
  MembersResponse,
  RoutesResponse,
  ServicesResponse,
  StatusResponse,
} from "../lib/admin/api_types.ts";
import { adminBase, adminCall, table } from "./admin_client.ts";
import { type CommandSpec, type ParsedArgs, stringFlag } from "./args.ts";

const common = [
  {
    name: "admin",
    kind: "string",
    value: "HOST:PORT",
    help: "admin API of the node to ask",
    default: "$WEFT_ADMIN or 127.0.0.1:15000",
  },
  {
    name: "output",
    short: "o",
    kind: "string",
    value: "FORMAT",
    help: "output format: table or json",
    default: "table",
  },
] as const;

export const opsSpecs: Record<string, CommandSpec> = {
  members: {
    name: "members",
    usage: "weft members [--admin HOST:PORT] [-o json]",
    summary: "List the members of the cluster with their state, incarnation and services.",
    flags: [...common],
  },
  services: {
    name: "services",
    usage: "weft services [--admin HOST:PORT] [-o json]",
    summary: "List the services in the mesh with their endpoints and health.",
    flags: [...common],
  },
  routes: {
    name: "routes",
    usage: "weft routes [--node NAME] [--admin HOST:PORT] [-o json]",
    summary: "Show the compiled routing table a node uses (this node, or --node NAME).",
    flags: [...common, {
      name: "node",
      kind: "string",
      value: "NAME",
      help: "ask another member, at the admin address it advertises",
    }],
  },
  status: {
    name: "status",
    usage: "weft status [--admin HOST:PORT] [-o json]",
    summary: "Show the node, cluster size and policy store convergence.",
    flags: [...common],
  },
};

function labelsText(labels: Record<string, string> | undefined): string {
  return Object.entries(labels ?? {}).map(([k, v]) => `${k}=${v}`).join(",");
}

function outputFormat(args: ParsedArgs): "table" | "json" {
  const o = stringFlag(args, "output") ?? "table";
  if (o !== "table" && o !== "json") throw new UserError(`-o: expected table or json, got "${o}"`);
  return o;
}

/** The admin API a member advertises, looked up through the node at `base`. */
async function adminOfMember(base: string, name: string): Promise<string> {
  const { members } = await adminCall<MembersResponse>(base, "GET", "/v1/members");
  const m = members.find((x) => x.name === name);
  if (!m) {
    throw new UserError(
      `--node: no member named "${name}" (members: ${members.map((x) => x.name).join(", ")})`,
    );
  }
  if (m.state !== "alive") throw new UserError(`--node: member "${name}" is ${m.state}`);
  return adminBase(m.admin);
}

/** Runs one of the read-only commands and returns its output text. */
export async function runOps(command: string, args: ParsedArgs): Promise<string> {
  const format = outputFormat(args);
  let base = adminBase(stringFlag(args, "admin"));
  const node = stringFlag(args, "node");
  if (node !== undefined) base = await adminOfMember(base, node);
  const path = {
    members: "/v1/members",
    services: "/v1/services",
    routes: "/v1/routes",
    status: "/v1/status",
  }[command];
  if (!path) throw new UserError(`unknown command "${command}"`);
  const data = await adminCall(base, "GET", path);
  if (format === "json") return JSON.stringify(data, null, 2);
  return formatOps(command, data);
}

/** The table (human) form of an operating command's answer from the admin API. */
export function formatOps(command: string, data: unknown): string {
  switch (command) {
    case "members": {
      const ms = (data as MembersResponse).members;
      return table(
        ["name", "address", "state", "incarnation", "services"],
        ms.map((
          m,
        ) => [
          m.name,
          m.address,
          m.state,
          String(m.incarnation),
          (m.services ?? []).map((s) => s.name).join(","),
        ]),
      );
    }
    case "services": {
      const ss = (data as ServicesResponse).services;
      const rows: string[][] = [];
      for (const s of ss) {
        for (const e of s.endpoints) {
          rows.push([
            s.name,
            e.node,
            e.address,
            e.healthy ? "healthy" : "unhealthy",
            labelsText(e.labels),
          ]);
        }
        if (s.endpoints.length === 0) rows.push([s.name, "-", "-", "no endpoints", ""]);
      }
      return table(["service", "node", "address", "health", "labels"], rows);
    }
    case "routes": {
      const r = data as RoutesResponse;
      const rows: string[][] = [];
      for (const vh of r.outbound) {
        for (const rt of vh.routes) rows.push([vh.host, rt.name, rt.match, rt.destinations]);
      }
      return `snapshot version ${r.version}\n` +
        table(["host", "route", "match", "destinations"], rows);
    }
    case "status": {
      const st = data as StatusResponse;
      const m = st.members;
      const lines = [
        ["node", `${st.node.name} (id ${st.node.id}, weft ${st.node.version})`],
        [
          "members",
          `${m.total} total: ${m.alive} alive, ${m.suspect} suspect, ${m.dead} dead, ${m.left} left`,
        ],
        ["snapshot", `version ${st.snapshotVersion}`],
      ];
      if (st.proxyNetwork) lines.push(["sockets", st.proxyNetwork]);
      if (st.store) {
        const last = st.store.lastChange;
        lines.push(
          [
            "store",
            `${st.store.count} resources, digest ${st.store.digest.slice(0, 16)}, last change ${
              last ? `${last.key} at ${last.at}` : "never"
            }`,
          ],
          ["converged", st.store.converged.join(", ") || "-"],
          ["lagging", st.store.lagging.join(", ") || "-"],
        );
      }
      return lines.map(([k, v]) => `${k.padEnd(10)} ${v}`).join("\n");
    }
    default:
      return JSON.stringify(data, null, 2);
  }
}
