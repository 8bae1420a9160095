/**
 * @module
 * `weft apply`, `weft get` and `weft delete`: the policy commands, with kubectl-like output
 * (`serviceentry.networking.istio.io/httpbin created`). Each function takes its arguments and
 * an environment (admin address, output sinks, stdin) and returns the exit code: 0 success,
 * 1 operational failure (node unreachable, not found, `--wait` timed out), 2 user error with
 * one line naming the flag or field.
 */
import { adminRequest, type AdminResponse, OperationalError } from "./admin_client.ts";
import { errorMessage, parseHostPort, UserError } from "../lib/mod.ts";
import {
  findKind,
  parseResources,
  resourceDisplayName,
  resourcesToYaml,
} from "../lib/resources/registry.ts";
import type { Resource } from "../lib/resources/kind.ts";
import {
  boolFlag,
  type CommandSpec,
  helpText,
  parseArgs,
  type ParsedArgs,
  stringFlag,
} from "./args.ts";

/** Where a policy command talks to and writes. `stdout`/`stderr` receive whole lines. */
export interface ResourceCliEnv {
  /** Admin API `HOST:PORT` (already resolved from `--admin`/`$WEFT_ADMIN`); `--admin` in args wins. */
  admin: string;
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  /** Reads all of stdin (for `-f -`); defaults to Deno.stdin. */
  readStdin?: () => Promise<string>;
  /** Poll period of `--wait` (tests shorten it). */
  waitPollMs?: number;
}

const adminFlag = {
  name: "admin",
  kind: "string",
  value: "HOST:PORT",
  help: "admin API of the node to talk to",
  default: "$WEFT_ADMIN or 127.0.0.1:15000",
} as const;

const namespaceFlag = {
  name: "namespace",
  short: "n",
  kind: "string",
  value: "NS",
  help: "namespace",
  default: "default",
} as const;

export const resourceSpecs: Record<"apply" | "get" | "delete", CommandSpec> = {
  apply: {
    name: "apply",
    usage: "weft apply -f FILE|- [--dry-run] [--wait [--timeout 30s]] [--admin HOST:PORT]",
    summary: "Apply resources (YAML, multi-document, or JSON) to the replicated policy store.",
    flags: [
      {
        name: "filename",
        short: "f",
        kind: "string",
        value: "FILE",
        help: "file to apply, - for stdin",
      },
      {
        name: "dry-run",
        kind: "boolean",
        help: "validate and show what would change, apply nothing",
      },
      { name: "wait", kind: "boolean", help: "return once every live node holds the change" },
      {
        name: "timeout",
        kind: "string",
        value: "DURATION",
        help: "limit of --wait",
        default: "30s",
      },
      adminFlag,
    ],
    positionals: [0, 0],
  },
  get: {
    name: "get",
    usage: "weft get KIND [NAME] [-n NS] [-o yaml|json] [--admin HOST:PORT]",
    summary: "Show resources of a kind (serviceentry, virtualservice, destinationrule).",
    flags: [
      namespaceFlag,
      { name: "all-namespaces", short: "A", kind: "boolean", help: "list across all namespaces" },
      {
        name: "output",
        short: "o",
        kind: "string",
        value: "FORMAT",
        help: "table, yaml or json",
        default: "table",
      },
      adminFlag,
    ],
    positionals: [1, 2],
  },
  delete: {
    name: "delete",
    usage: "weft delete KIND NAME [-n NS] [--admin HOST:PORT]",
    summary: "Delete a resource from the replicated policy store.",
    flags: [namespaceFlag, adminFlag],
    positionals: [2, 2],
  },
};

type HttpResult = AdminResponse;

function call(
  admin: string,
  method: string,
  path: string,
  body?: string,
  contentType?: string,
): Promise<HttpResult> {
  return adminRequest(
    `http://${admin.replace(/^https?:\/\//, "")}`,
    method,
    path,
    body,
    contentType ? { "content-type": contentType } : undefined,
  );
}

function failIfError(r: HttpResult): void {
  if (r.status < 400) return;
  const e = r.body as { error?: string; details?: { path: string; message: string }[] };
  const msg = e.error ?? `HTTP ${r.status}`;
  if (r.status === 400) throw new UserError(msg, e.details ?? []);
  throw new OperationalError(r.status === 404 ? `Error from server (NotFound): ${msg}` : msg);
}

/** Parses `30s`, `500ms`, `2m` or a bare number of seconds. */
export function parseDuration(flag: string, value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value.trim());
  if (!m) throw new UserError(`--${flag}: expected a duration like 30s or 500ms, got "${value}"`);
  const n = Number(m[1]);
  return m[2] === "ms" ? n : m[2] === "m" ? n * 60_000 : n * 1000;
}

function adminOf(args: ParsedArgs, env: ResourceCliEnv): string {
  const admin = stringFlag(args, "admin") ?? env.admin;
  const hp = parseHostPort(admin.replace(/^https?:\/\//, ""));
  if (typeof hp === "string") throw new UserError(`--admin: ${hp}`);
  return admin;
}

async function run(
  spec: CommandSpec,
  argv: readonly string[],
  env: ResourceCliEnv,
  body: (args: ParsedArgs, admin: string) => Promise<number>,
): Promise<number> {
  try {
    const args = parseArgs(spec, argv);
    if (args.help) {
      env.stdout(helpText(spec));
      return 0;
    }
    return await body(args, adminOf(args, env));
  } catch (err) {
    if (err instanceof UserError) {
      const d = err.details;
      // The first line is the summary; every field problem follows on its own line, so a
      // file with several mistakes can be fixed in one pass.
      env.stderr(`weft: ${err.message}`);
      if (d.length > 1) { for (const i of d) env.stderr(`  ${i.path}: ${i.message}`); }
      return 2;
    }
    if (err instanceof OperationalError) {
      env.stderr(`weft: ${err.message}`);
      return 1;
    }
    env.stderr(`weft: ${errorMessage(err)}`);
    return 1;
  }
}

async function readInput(file: string, env: ResourceCliEnv): Promise<string> {
  if (file === "-") {
    if (env.readStdin) return await env.readStdin();
    return await new Response(Deno.stdin.readable).text();
  }
  try {
    return await Deno.readTextFile(file);
  } catch (err) {
    throw new UserError(`-f: cannot read "${file}": ${errorMessage(err)}`);
  }
}

interface StoreView {
  digest: string;
  nodes: { node: string; digest: string; alive: boolean }[];
}

/** `weft apply`. */
export function applyCommand(argv: readonly string[], env: ResourceCliEnv): Promise<number> {
  return run(resourceSpecs.apply, argv, env, async (args, admin) => {
    const file = stringFlag(args, "filename");
    if (!file) throw new UserError("-f: required (a file, or - for stdin)");
    const dryRun = boolFlag(args, "dry-run");
    const wait = boolFlag(args, "wait");
    const timeoutMs = parseDuration("timeout", stringFlag(args, "timeout") ?? "30s");
    const text = await readInput(file, env);
    // Validate locally first: the same parser as the node, so errors need no round trip.
    const local = parseResources(text);
    const r = await call(
      admin,
      "POST",
      `/v1/resources${dryRun ? "?dryRun=true" : ""}`,
      JSON.stringify(local),
      "application/json",
    );
    failIfError(r);
    const results = r.body.results as {
      kind: string;
      name: string;
      namespace: string;
      result: string;
    }[];
    for (const res of results) {
      const ns = res.namespace === "default" ? "" : ` (namespace ${res.namespace})`;
      env.stdout(
        `${resourceDisplayName({ kind: res.kind, metadata: { name: res.name } })} ${res.result}${
          dryRun ? " (dry run)" : ""
        }${ns}`,
      );
    }
    if (!wait || dryRun) return 0;
    return await waitConverged(admin, timeoutMs, env);
  });
}

async function waitConverged(
  admin: string,
  timeoutMs: number,
  env: ResourceCliEnv,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  const poll = env.waitPollMs ?? 200;
  let lagging: string[] = [];
  for (let i = 0; i < 1_000_000; i++) {
    const r = await call(admin, "GET", "/v1/store");
    failIfError(r);
    const view = r.body as unknown as StoreView;
    lagging = view.nodes.filter((n) => n.alive && n.digest !== view.digest).map((n) => n.node);
    if (lagging.length === 0) {
      const live = view.nodes.filter((n) => n.alive).length;
      env.stdout(
        `converged on ${live} node${live === 1 ? "" : "s"} (digest ${view.digest.slice(0, 12)})`,
      );
      return 0;
    }
    if (Date.now() >= deadline) break;
    await new Promise((res) => setTimeout(res, Math.min(poll, Math.max(1, deadline - Date.now()))));
  }
  env.stderr(
    `error: timed out after ${timeoutMs} ms waiting for ${lagging.length} node(s) to converge: ${
      lagging.join(", ")
    }`,
  );
  return 1;
}

function age(iso: string): string {
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const fmt = (r: string[]) => r.map((c, i) => (c ?? "").padEnd(widths[i])).join("   ").trimEnd();
  return [fmt(header), ...rows.map(fmt)];
}

/** Kind-specific summary columns, as `kubectl get` shows them for Istio kinds. */
function summaryColumns(r: Resource): [string[], string[]] {
  const spec = (r.spec ?? {}) as Record<string, unknown>;
  const list = (v: unknown) => (Array.isArray(v) ? v.map(String).join(",") : "");
  switch (r.kind) {
    case "ServiceEntry":
      return [
        ["HOSTS", "LOCATION", "RESOLUTION"],
        [list(spec.hosts), String(spec.location ?? ""), String(spec.resolution ?? "NONE")],
      ];
    case "VirtualService":
      return [["HOSTS"], [list(spec.hosts)]];
    case "DestinationRule":
      return [["HOST"], [String(spec.host ?? "")]];
    default:
      return [[], []];
  }
}

/** `weft get`. */
export function getCommand(argv: readonly string[], env: ResourceCliEnv): Promise<number> {
  return run(resourceSpecs.get, argv, env, async (args, admin) => {
    const [kindArg, name] = args.positionals;
    const def = findKind(kindArg);
    if (!def) {
      throw new UserError(
        `unknown kind "${kindArg}" (try serviceentry, virtualservice, destinationrule)`,
      );
    }
    const output = stringFlag(args, "output") ?? "table";
    if (!["table", "yaml", "json", "wide"].includes(output)) {
      throw new UserError(`-o: expected table, yaml or json, got "${output}"`);
    }
    const ns = stringFlag(args, "namespace") ?? "default";
    const all = boolFlag(args, "all-namespaces");
    let items: { resource: Resource; updatedAt: string }[];
    if (name) {
      const r = await call(
        admin,
        "GET",
        `/v1/resources/${def.kind}/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`,
      );
      failIfError(r);
      items = [r.body as unknown as { resource: Resource; updatedAt: string }];
    } else {
      const q = new URLSearchParams({ kind: def.kind });
      if (!all) q.set("namespace", ns);
      const r = await call(admin, "GET", `/v1/resources?${q}`);
      failIfError(r);
      items = (r.body.items ?? []) as { resource: Resource; updatedAt: string }[];
    }
    const resources = items.map((i) => i.resource);
    if (output === "json") {
      env.stdout(
        JSON.stringify(
          name ? resources[0] : { apiVersion: "v1", kind: "List", items: resources },
          null,
          2,
        ),
      );
      return 0;
    }
    if (output === "yaml") {
      env.stdout(resourcesToYaml(resources).trimEnd());
      return 0;
    }
    if (items.length === 0) {
      env.stderr(`No resources found in ${all ? "any" : ns} namespace.`);
      return 0;
    }
    const [extraHeader] = summaryColumns(items[0].resource);
    const header = [...(all ? ["NAMESPACE"] : []), "NAME", ...extraHeader, "AGE"];
    const rows = items.map((i) => [
      ...(all ? [i.resource.metadata.namespace] : []),
      i.resource.metadata.name,
      ...summaryColumns(i.resource)[1],
      age(i.updatedAt),
    ]);
    for (const line of table(header, rows)) env.stdout(line);
    return 0;
  });
}

/** `weft delete`. */
export function deleteCommand(argv: readonly string[], env: ResourceCliEnv): Promise<number> {
  return run(resourceSpecs.delete, argv, env, async (args, admin) => {
    const [kindArg, name] = args.positionals;
    const def = findKind(kindArg);
    if (!def) {
      throw new UserError(
        `unknown kind "${kindArg}" (try serviceentry, virtualservice, destinationrule)`,
      );
    }
    const ns = stringFlag(args, "namespace") ?? "default";
    const r = await call(
      admin,
      "DELETE",
      `/v1/resources/${def.kind}/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`,
    );
    failIfError(r);
    env.stdout(`${resourceDisplayName({ kind: def.kind, metadata: { name } })} deleted`);
    return 0;
  });
}
