/**
 * @module
 * Node configuration: a zod schema with a documented default for every value. Sources are
 * merged file < environment < flags by `main.ts`; this module only validates.
 */
import { z } from "./schema.ts";
import { parseHostPort } from "./address.ts";
import { formatPath, UserError } from "./errors.ts";

const hostPort = z.string().superRefine((v, ctx) => {
  const r = parseHostPort(v);
  if (typeof r === "string") ctx.addIssue({ code: "custom", message: r });
});

const serviceName = z.string().regex(
  /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/,
  "must be a lowercase DNS name (letters, digits, '-', '.')",
);

/** Application protocol of a local service; decides how the proxy forwards it. */
export const protocolSchema = z.enum(["http", "http2", "grpc", "tcp"]);
export type Protocol = z.infer<typeof protocolSchema>;

/** A service that runs on this node and is advertised to the mesh. */
/**
 * An active health check the node runs against its own instance (Consul-style: the owner
 * checks, the cluster learns the verdict through gossip). HTTP services are checked with
 * `GET path`; TCP services with a plain connect, so `path` is ignored for them.
 */
export const healthCheckSchema = z.object({
  /** HTTP path to GET; without it an HTTP service is not checked (nothing to ask for). */
  path: z.string().startsWith("/").optional(),
  /** Consul's default check interval: 10 s. */
  intervalMs: z.number().int().min(1).default(10_000),
  /** Below the interval so checks never overlap; Envoy's usual health-check timeout order. */
  timeoutMs: z.number().int().min(1).default(2000),
  /** One pass restores the instance: recovering fast matters more than flapping once. */
  healthyThreshold: z.number().int().min(1).default(1),
  /** Two failures in a row mark it unhealthy, so one lost probe does not pull an instance. */
  unhealthyThreshold: z.number().int().min(1).default(2),
}).strict();
export type HealthCheck = z.infer<typeof healthCheckSchema>;

export const localServiceSchema = z.object({
  name: serviceName,
  port: z.number().int().min(1).max(65535),
  /** Where the service listens; loopback because it runs on this host. */
  host: z.string().default("127.0.0.1"),
  protocol: protocolSchema.default("http"),
  /** Free-form labels (e.g. `version: v2`) used by subsets and shown in the catalog. */
  labels: z.record(z.string(), z.string()).default({}),
  /** Active health check run by this node; none by default (the instance counts as healthy). */
  check: healthCheckSchema.optional(),
}).strict();
export type LocalService = z.infer<typeof localServiceSchema>;

/**
 * A mesh service exposed to local applications as a plain TCP port (Consul's "upstreams"):
 * connections to `localHost:localPort` are carried to an instance of `service`. Fixed at
 * start: changing upstreams needs a restart.
 */
export const upstreamSchema = z.object({
  service: serviceName,
  /** 0 picks a free port (the bound port is logged in "node started"). */
  localPort: z.number().int().min(0).max(65535),
  /** Loopback: only applications on this host use the port. */
  localHost: z.string().min(1).default("127.0.0.1"),
}).strict();
export type Upstream = z.infer<typeof upstreamSchema>;

/** Data-plane tunables, with Envoy's defaults where Envoy has one. */
export const proxyTuningSchema = z.object({
  /** Envoy's cluster connect_timeout default is 5 s; Istio sets 10 s. Weft keeps Envoy's. */
  connectTimeoutMs: z.number().int().min(1).default(5000),
  /** Envoy's route timeout default: 15 s for the whole upstream exchange. */
  routeTimeoutMs: z.number().int().min(0).default(15000),
  /** Idle upstream connections are closed after this (Envoy: 1 h; shorter frees sockets). */
  upstreamIdleTimeoutMs: z.number().int().min(1).default(60_000),
  /** Upper bound of idle keep-alive connections kept per upstream endpoint. */
  maxIdlePerEndpoint: z.number().int().min(0).default(128),
  /** Time given to requests in flight when the node stops. */
  drainTimeoutMs: z.number().int().min(0).default(5000),
  /**
   * From accept (first request) or a request's first byte until its head is complete; then
   * 408 and close. A client writes a head in one go, so 10 s is generous even on a bad link,
   * and bounds how long a slowloris connection is held (nginx: 60 s). 0 turns it off.
   */
  requestHeadersTimeoutMs: z.number().int().min(0).default(10_000),
  /**
   * A keep-alive client connection with no request in progress is closed after this, silently.
   * 60 s keeps the connections of applications that send every few seconds and frees those of
   * gone ones; below nginx's 75 s keepalive_timeout, far below Envoy's 1 h. 0 turns it off.
   */
  downstreamIdleTimeoutMs: z.number().int().min(0).default(60_000),
  /**
   * While a request body is read: no byte from the client for this long ends the request
   * (408 when no response went out yet, else close). A sending client stalls seconds, not
   * half a minute; nginx's client_body_timeout is 60 s. 0 turns it off.
   */
  requestBodyTimeoutMs: z.number().int().min(0).default(30_000),
  /**
   * Open client connections per listener; one more is closed at once on accept. An idle one
   * costs about 50 KiB (its session and head buffer; bench/idle_connections.ts) and a busy one
   * a 64 KiB read buffer more, so 10,000 bound a listener near 1 GiB and stay under the usual
   * 65,536 file descriptors. 0: no limit.
   */
  maxDownstreamConnections: z.number().int().min(0).default(10_000),
  /**
   * Socket backend of the data plane: "deno" (Deno's sockets, everywhere), "epoll" (Linux
   * x86_64/aarch64 with the FFI permission; faster under load, but its idle wait costs a
   * worker-thread hand-off, so it is the dearer one at light load), "uring" (epoll with reads,
   * writes and the idle wait going through an io_uring; the fastest under load and as cheap as
   * Deno's sockets at light load; needs a kernel that grants one), or "auto" (the default):
   * uring where it loads, else Deno's sockets. See docs/proxy.md.
   */
  network: z.enum(["auto", "deno", "epoll", "uring"]).default("auto"),
}).strict();
export type ProxyTuning = z.infer<typeof proxyTuningSchema>;

/**
 * Membership timing: a named profile (memberlist's LAN, WAN or local values, documented in
 * gossip/config.ts) plus optional per-value overrides in milliseconds.
 */
export const gossipSettingsSchema = z.object({
  /** `lan` suits one data centre; `local` is for loopback tests and demos; `wan` for WANs. */
  profile: z.enum(["lan", "wan", "local"]).default("lan"),
  probeIntervalMs: z.number().int().min(1).optional(),
  probeTimeoutMs: z.number().int().min(1).optional(),
  suspicionMult: z.number().int().min(1).optional(),
  gossipIntervalMs: z.number().int().min(1).optional(),
  pushPullIntervalMs: z.number().int().min(1).optional(),
  rejoinIntervalMs: z.number().int().min(1).optional(),
}).strict();
export type GossipSettings = z.infer<typeof gossipSettingsSchema>;

export const nodeConfigSchema = z.object({
  /** Node name shown to people; defaults to the hostname. Identity is a separate stable id. */
  name: z.string().min(1).max(128).default(() => Deno.hostname()),
  /** Policy store, node id, certificates; relative to the working directory. */
  dataDir: z.string().min(1).default("./weft-data"),
  /** Loopback by default: the admin API changes policy, so it is not exposed unless asked. */
  adminAddr: hostPort.default("127.0.0.1:15000"),
  /** Loopback: only applications on this host send through it. */
  outboundAddr: hostPort.default("127.0.0.1:15001"),
  /** All interfaces: other nodes deliver requests for local services here (Istio's 15006). */
  inboundAddr: hostPort.default("0.0.0.0:15006"),
  /** SWIM membership, UDP and TCP (memberlist's and Serf's port). */
  gossipAddr: hostPort.default("0.0.0.0:7946"),
  /** libp2p policy replication. */
  p2pAddr: hostPort.default("0.0.0.0:7947"),
  /** Address other nodes use to reach this one; derived from the bind address when unset. */
  advertiseAddr: z.string().min(1).optional(),
  /** Seed gossip addresses to join through. */
  join: z.array(hostPort).default([]),
  services: z.array(localServiceSchema).default([]),
  /** Mesh services offered as local TCP ports (`--upstream SERVICE=PORT`); none by default. */
  upstreams: z.array(upstreamSchema).default([]),
  /** Base64 AES-256-GCM gossip key (32 bytes). */
  encryptKey: z.string().optional(),
  /** Extra base64 keys accepted for decryption during a key rotation. */
  extraEncryptKeys: z.array(z.string()).default([]),
  /**
   * A keyring file: one base64 key per line (`#` comments); the first is the primary. Lets
   * keys rotate by editing a file rather than flags.
   */
  keyringFile: z.string().optional(),
  gossip: gossipSettingsSchema.default({ profile: "lan" }),
  logLevel: z.enum(["debug", "info", "warn", "error"]).default("info"),
  /**
   * One JSON line per request on stdout (Envoy-style access log). Off by default: at tens of
   * thousands of requests a second it is the operator's choice, as in Istio.
   */
  accessLog: z.boolean().default(false),
  proxy: proxyTuningSchema.default(proxyTuningSchema.parse({})),
}).strict();

export type NodeConfig = z.infer<typeof nodeConfigSchema>;
export type NodeConfigInput = z.input<typeof nodeConfigSchema>;

/**
 * Validates a config object. Throws a {@linkcode UserError} naming each bad field; `source`
 * prefixes the message (e.g. the file name).
 */
export function parseNodeConfig(input: unknown, source = "config"): NodeConfig {
  const r = nodeConfigSchema.safeParse(input);
  if (r.success) {
    const names = new Set<string>();
    for (const [i, s] of r.data.services.entries()) {
      if (names.has(s.name)) {
        throw new UserError(`${source}: services[${i}].name: duplicate service "${s.name}"`, [
          { path: `services[${i}].name`, message: `duplicate service "${s.name}"` },
        ]);
      }
      names.add(s.name);
    }
    return r.data;
  }
  const details = r.error.issues.map((i) => ({
    path: formatPath(i.path) || "(root)",
    message: i.message,
  }));
  const first = details[0];
  throw new UserError(`${source}: ${first.path}: ${first.message}`, details);
}

/**
 * Parses a `--service` spec: `NAME=PORT[,protocol=http][,host=H][,check=/path]
 * [,check-interval-ms=N][,key=value…]`.
 * Returns an error message instead of throwing so the caller can name the flag.
 */
export function parseServiceSpec(spec: string): LocalService | string {
  const [head, ...rest] = spec.split(",");
  const eq = head.indexOf("=");
  if (eq <= 0) return `expected NAME=PORT[,key=value…], got "${spec}"`;
  const name = head.slice(0, eq).trim();
  const portText = head.slice(eq + 1).trim();
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535) {
    return `port "${portText}" of service "${name}" is not a number in 1-65535`;
  }
  const labels: Record<string, string> = {};
  let protocol: string | undefined;
  let host: string | undefined;
  let check: Record<string, unknown> | undefined;
  for (const kv of rest) {
    const i = kv.indexOf("=");
    if (i <= 0) return `expected key=value, got "${kv}" in "${spec}"`;
    const k = kv.slice(0, i).trim();
    const v = kv.slice(i + 1).trim();
    if (k === "protocol") protocol = v;
    else if (k === "host") host = v;
    else if (k === "check") {
      // `check=/path` for HTTP; TCP services take any value (e.g. `check=connect`).
      check = { ...check, path: v };
    } else if (k === "check-interval-ms") {
      if (!/^\d+$/.test(v)) return `check-interval-ms "${v}" is not a whole number in "${spec}"`;
      check = { ...check, intervalMs: Number(v) };
    } else labels[k] = v;
  }
  if (
    check && protocol === "tcp" && typeof check.path === "string" && !check.path.startsWith("/")
  ) {
    const { path: _connectNeedsNoPath, ...connectCheck } = check;
    check = connectCheck;
  }
  const r = localServiceSchema.safeParse({
    name,
    port,
    protocol,
    host,
    labels,
    ...(check ? { check } : {}),
  });
  if (!r.success) {
    const i = r.error.issues[0];
    return `${formatPath(i.path)}: ${i.message} in "${spec}"`;
  }
  return r.data;
}

/**
 * Parses an `--upstream` spec: `SERVICE=LOCALPORT` (port 0 picks a free one). Returns an error
 * message instead of throwing so the caller can name the flag.
 */
export function parseUpstreamSpec(spec: string): Upstream | string {
  const eq = spec.indexOf("=");
  if (eq <= 0) return `expected SERVICE=LOCALPORT, got "${spec}"`;
  const service = spec.slice(0, eq).trim();
  const portText = spec.slice(eq + 1).trim();
  const localPort = Number(portText);
  if (!/^\d+$/.test(portText) || localPort > 65535) {
    return `port "${portText}" of upstream "${service}" is not a number in 0-65535`;
  }
  const r = upstreamSchema.safeParse({ service, localPort });
  if (!r.success) {
    const i = r.error.issues[0];
    return `${formatPath(i.path)}: ${i.message} in "${spec}"`;
  }
  return r.data;
}
