/**
 * @module
 * `VirtualService` (networking.istio.io): how requests for a host are routed. Field names and
 * meaning follow Istio's API; the strict schema rejects fields Weft does not implement, with
 * their path. Only HTTP routes exist for now: `tcp` and `tls` routes are refused with a clear
 * message rather than ignored, and `gateways` may only name `mesh` (Weft has no gateways).
 *
 * Checks beyond the shape (regexes compile under RE2 rules, durations parse, weights of a
 * multi-destination route sum to 100, retry conditions are known) live in `validate`, so each
 * problem is reported with its path. Durations are kept as the user wrote them and converted
 * with {@linkcode parseDurationMs} when the snapshot is compiled.
 */
import { z } from "../schema.ts";
import type { KindDefinition } from "./kind.ts";

// ---------------------------------------------------------------------------------------------
// Durations

const DURATION_UNITS_MS: Record<string, number> = {
  h: 3_600_000,
  m: 60_000,
  s: 1000,
  ms: 1,
  us: 0.001,
  "µs": 0.001,
  ns: 0.000001,
};
const DURATION_PART = /(\d+(?:\.\d*)?|\.\d+)(h|ms|m|s|us|µs|ns)/y;

/**
 * Milliseconds in a duration string as Istio accepts them: protobuf's `"1.5s"` and Go's
 * `"200ms"`, `"1m30s"`, `"1h"`; undefined when `text` is not a valid non-negative duration.
 */
export function parseDurationMs(text: string): number | undefined {
  if (text.length === 0 || text.length > 64) return undefined;
  let total = 0;
  DURATION_PART.lastIndex = 0;
  while (DURATION_PART.lastIndex < text.length) {
    const start = DURATION_PART.lastIndex;
    const m = DURATION_PART.exec(text);
    if (!m || m.index !== start) return undefined;
    total += Number(m[1]) * DURATION_UNITS_MS[m[2]];
  }
  return Number.isFinite(total) ? total : undefined;
}

/** Like {@linkcode parseDurationMs} but throws a message naming the value; for compiled input. */
export function durationMs(text: string): number {
  const ms = parseDurationMs(text);
  if (ms === undefined) throw new RangeError(`"${text}" is not a duration like "1.5s" or "200ms"`);
  return ms;
}

/** A duration field; checked by `validate`. */
export const durationSchema = z.string().min(1);

// ---------------------------------------------------------------------------------------------
// Shared pieces

/**
 * Istio's `StringMatch`: at most one of `exact`, `prefix`, `regex` (RE2 syntax, full match).
 * An empty object (in `headers`, `withoutHeaders`, `queryParams`) matches presence.
 */
export const stringMatchSchema = z.object({
  exact: z.string().optional(),
  prefix: z.string().optional(),
  regex: z.string().optional(),
}).strict().refine(
  (m) => [m.exact, m.prefix, m.regex].filter((x) => x !== undefined).length <= 1,
  { message: "use only one of exact, prefix, regex" },
);
export type StringMatch = z.infer<typeof stringMatchSchema>;

const nonEmptyStringMatch = stringMatchSchema.refine(
  (m) => m.exact !== undefined || m.prefix !== undefined || m.regex !== undefined,
  { message: "needs one of exact, prefix, regex" },
);

const portNumber = z.number().int().min(1).max(65535);

/** A percentage in [0, 100], as Istio's `Percent` (`{ value: 10.5 }`). */
export const percentSchema = z.object({ value: z.number().min(0).max(100) }).strict();

const headerName = z.string().min(1).regex(
  /^[!#$%&'*+\-.^_`|~0-9a-zA-Z]+$/,
  "must be an HTTP header name",
);

/** Header edits (`headers.request` / `headers.response`). */
export const headerOperationsSchema = z.object({
  set: z.record(headerName, z.string()).optional(),
  add: z.record(headerName, z.string()).optional(),
  remove: z.array(headerName).optional(),
}).strict();
export type HeaderOperations = z.infer<typeof headerOperationsSchema>;

export const headersSchema = z.object({
  request: headerOperationsSchema.optional(),
  response: headerOperationsSchema.optional(),
}).strict();
export type HeadersPolicy = z.infer<typeof headersSchema>;

/** A service name (short, FQDN, or ServiceEntry host); no scheme, port or path. */
const destinationHost = z.string().min(1).max(253).regex(
  /^[a-zA-Z0-9*]([a-zA-Z0-9.*-]*[a-zA-Z0-9])?$/,
  "must be a host name without scheme, port or path",
);

/** Where a request goes: a service host, optionally a DestinationRule subset and a port. */
export const destinationSchema = z.object({
  host: destinationHost,
  subset: z.string().min(1).optional(),
  port: z.object({ number: portNumber }).strict().optional(),
}).strict();
export type Destination = z.infer<typeof destinationSchema>;

// ---------------------------------------------------------------------------------------------
// HTTP route pieces

/** One alternative of `match[]`: every condition given must hold. */
export const httpMatchRequestSchema = z.object({
  name: z.string().optional(),
  uri: nonEmptyStringMatch.optional(),
  method: nonEmptyStringMatch.optional(),
  authority: nonEmptyStringMatch.optional(),
  headers: z.record(z.string().min(1), stringMatchSchema).optional(),
  queryParams: z.record(z.string().min(1), stringMatchSchema).optional(),
  withoutHeaders: z.record(z.string().min(1), stringMatchSchema).optional(),
  sourceLabels: z.record(z.string().min(1), z.string()).optional(),
  ignoreUriCase: z.boolean().optional(),
  port: portNumber.optional(),
}).strict();
export type HttpMatchRequest = z.infer<typeof httpMatchRequestSchema>;

export const httpRouteDestinationSchema = z.object({
  destination: destinationSchema,
  /** 0..100; may be omitted with a single destination (then it gets everything). */
  weight: z.number().int().min(0).max(100).optional(),
  headers: headersSchema.optional(),
}).strict();
export type HttpRouteDestination = z.infer<typeof httpRouteDestinationSchema>;

export const httpRedirectSchema = z.object({
  uri: z.string().min(1).optional(),
  authority: z.string().min(1).optional(),
  port: portNumber.optional(),
  scheme: z.enum(["http", "https"]).optional(),
  /** Istio's default is 301. */
  redirectCode: z.number().int().min(300).max(399).optional(),
}).strict();
export type HttpRedirect = z.infer<typeof httpRedirectSchema>;

export const httpRewriteSchema = z.object({
  /** Replaces the matched prefix (or the whole path for exact/regex matches). */
  uri: z.string().min(1).optional(),
  authority: z.string().min(1).optional(),
}).strict();
export type HttpRewrite = z.infer<typeof httpRewriteSchema>;

/** Envoy `retry_on` conditions Weft implements, plus numeric status codes as Istio allows. */
export const RETRY_ON_CONDITIONS = [
  "5xx",
  "gateway-error",
  "connect-failure",
  "reset",
  "retriable-4xx",
  "refused-stream",
  "retriable-status-codes",
] as const;
export type RetryOnCondition = (typeof RETRY_ON_CONDITIONS)[number];

export const httpRetrySchema = z.object({
  attempts: z.number().int().min(0).max(100),
  perTryTimeout: durationSchema.optional(),
  /** Comma-separated conditions (Envoy `x-envoy-retry-on` names) and/or status codes. */
  retryOn: z.string().optional(),
}).strict();
export type HttpRetry = z.infer<typeof httpRetrySchema>;

/** Parsed `retryOn`: named conditions and extra retriable status codes. */
export interface RetryPolicyConditions {
  conditions: Set<RetryOnCondition>;
  statusCodes: Set<number>;
}

/**
 * Splits a `retryOn` string. Istio's default when unset is
 * `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes`; for HTTP
 * that means `connect-failure,refused-stream` (the gRPC ones never match plain HTTP).
 * Unknown names are reported by `validate`, so here they are skipped.
 */
export function parseRetryOn(retryOn: string | undefined): RetryPolicyConditions {
  const conditions = new Set<RetryOnCondition>();
  const statusCodes = new Set<number>();
  const text = retryOn ?? "connect-failure,refused-stream,retriable-status-codes";
  for (const raw of text.split(",")) {
    const token = raw.trim();
    if (/^\d{3}$/.test(token)) {
      statusCodes.add(Number(token));
      conditions.add("retriable-status-codes");
    } else if ((RETRY_ON_CONDITIONS as readonly string[]).includes(token)) {
      conditions.add(token as RetryOnCondition);
    }
  }
  return { conditions, statusCodes };
}

/** gRPC-only conditions Istio accepts in `retryOn`; harmless on HTTP, so accepted. */
const GRPC_RETRY_CONDITIONS = [
  "cancelled",
  "deadline-exceeded",
  "internal",
  "resource-exhausted",
  "unavailable",
];

export const httpFaultSchema = z.object({
  delay: z.object({
    fixedDelay: durationSchema,
    percentage: percentSchema.optional(),
  }).strict().optional(),
  abort: z.object({
    httpStatus: z.number().int().min(200).max(599),
    percentage: percentSchema.optional(),
  }).strict().optional(),
}).strict();
export type HttpFault = z.infer<typeof httpFaultSchema>;

export const corsPolicySchema = z.object({
  allowOrigins: z.array(nonEmptyStringMatch).optional(),
  allowMethods: z.array(z.string().min(1)).optional(),
  allowHeaders: z.array(z.string().min(1)).optional(),
  exposeHeaders: z.array(z.string().min(1)).optional(),
  maxAge: durationSchema.optional(),
  allowCredentials: z.boolean().optional(),
}).strict();
export type CorsPolicy = z.infer<typeof corsPolicySchema>;

/** One entry of `http[]`: conditions and what to do with a matching request. */
export const httpRouteSchema = z.object({
  name: z.string().min(1).optional(),
  match: z.array(httpMatchRequestSchema).optional(),
  route: z.array(httpRouteDestinationSchema).min(1).optional(),
  redirect: httpRedirectSchema.optional(),
  rewrite: httpRewriteSchema.optional(),
  timeout: durationSchema.optional(),
  retries: httpRetrySchema.optional(),
  fault: httpFaultSchema.optional(),
  mirror: destinationSchema.optional(),
  mirrorPercentage: percentSchema.optional(),
  corsPolicy: corsPolicySchema.optional(),
  headers: headersSchema.optional(),
}).strict();
export type HttpRoute = z.infer<typeof httpRouteSchema>;

// ---------------------------------------------------------------------------------------------
// The resource

/** Hosts of a VirtualService: `*`, `*.suffix`, or a name; no scheme, port or path. */
const routedHost = z.string().min(1).max(253).regex(
  /^(\*|(\*\.)?[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*)$/,
  "must be '*', a host name, or '*.' followed by a domain (no scheme, port or path)",
);

export const virtualServiceSpecSchema = z.object({
  hosts: z.array(routedHost).min(1, "must list at least one host"),
  /** Only `mesh` (the default): Weft has no ingress/egress gateways. */
  gateways: z.array(
    z.literal("mesh", { message: 'only "mesh" is supported (Weft has no gateways)' }),
  )
    .optional(),
  http: z.array(httpRouteSchema).optional(),
  /** Present in the schema only to refuse it with a clear message in `validate`. */
  tcp: z.array(z.unknown()).optional(),
  tls: z.array(z.unknown()).optional(),
  /** Accepted for compatibility; Weft has no namespace isolation, so it has no effect. */
  exportTo: z.array(z.string().min(1)).optional(),
}).strict();
export type VirtualServiceSpec = z.infer<typeof virtualServiceSpecSchema>;

// ---------------------------------------------------------------------------------------------
// Checks beyond the shape

/** Issue found by a `validate` function; `path` is relative to `spec`. */
export interface SpecIssue {
  path: string;
  message: string;
}

/**
 * Why `pattern` is not an acceptable RE2 regex, or undefined when it is. JavaScript syntax
 * that RE2 lacks (lookaround, backreferences) is refused so rules mean the same as in Istio.
 */
export function regexProblem(pattern: string): string | undefined {
  if (/\(\?<?[=!]/.test(pattern)) return "lookaround is not supported (RE2 syntax)";
  if (/\\[1-9]|\\k</.test(pattern)) return "backreferences are not supported (RE2 syntax)";
  try {
    new RegExp(pattern);
  } catch (err) {
    return `does not compile: ${(err as Error).message}`;
  }
  return undefined;
}

/** Compiles a StringMatch regex for a full match, as RE2's FullMatch does in Envoy. */
export function fullMatchRegex(pattern: string, ignoreCase = false): RegExp {
  return new RegExp(`^(?:${pattern})$`, ignoreCase ? "i" : "");
}

function checkStringMatch(m: StringMatch | undefined, path: string, issues: SpecIssue[]): void {
  if (m?.regex === undefined) return;
  const problem = regexProblem(m.regex);
  if (problem) issues.push({ path: `${path}.regex`, message: `regex "${m.regex}" ${problem}` });
}

function checkDuration(value: string | undefined, path: string, issues: SpecIssue[]): void {
  if (value !== undefined && parseDurationMs(value) === undefined) {
    issues.push({ path, message: `"${value}" is not a duration like "1.5s" or "200ms"` });
  }
}

function checkMatchRequest(m: HttpMatchRequest, path: string, issues: SpecIssue[]): void {
  checkStringMatch(m.uri, `${path}.uri`, issues);
  checkStringMatch(m.method, `${path}.method`, issues);
  checkStringMatch(m.authority, `${path}.authority`, issues);
  for (const field of ["headers", "queryParams", "withoutHeaders"] as const) {
    for (const [name, sm] of Object.entries(m[field] ?? {})) {
      checkStringMatch(sm, `${path}.${field}.${name}`, issues);
    }
  }
  for (const name of Object.keys(m.headers ?? {})) {
    if (name !== name.toLowerCase()) {
      issues.push({ path: `${path}.headers.${name}`, message: "header names must be lower-case" });
    }
  }
}

function checkRoute(r: HttpRoute, path: string, issues: SpecIssue[]): void {
  r.match?.forEach((m, i) => checkMatchRequest(m, `${path}.match[${i}]`, issues));
  if (!r.route && !r.redirect) {
    issues.push({ path, message: "needs either route or redirect" });
  }
  if (r.route && r.redirect) {
    issues.push({ path: `${path}.redirect`, message: "cannot be combined with route" });
  }
  if (r.redirect && r.rewrite) {
    issues.push({ path: `${path}.rewrite`, message: "cannot be combined with redirect" });
  }
  if (r.route && r.route.length > 1) {
    const sum = r.route.reduce((s, d) => s + (d.weight ?? 0), 0);
    if (sum !== 100) {
      issues.push({
        path: `${path}.route`,
        message: `weights of several destinations must sum to 100, got ${sum}`,
      });
    }
  }
  checkDuration(r.timeout, `${path}.timeout`, issues);
  if (r.retries) {
    checkDuration(r.retries.perTryTimeout, `${path}.retries.perTryTimeout`, issues);
    for (const raw of (r.retries.retryOn ?? "").split(",")) {
      const token = raw.trim();
      if (token === "" && r.retries.retryOn !== undefined && r.retries.retryOn.trim() !== "") {
        issues.push({ path: `${path}.retries.retryOn`, message: "has an empty condition" });
      } else if (
        token !== "" && !/^\d{3}$/.test(token) &&
        !(RETRY_ON_CONDITIONS as readonly string[]).includes(token) &&
        !GRPC_RETRY_CONDITIONS.includes(token)
      ) {
        issues.push({
          path: `${path}.retries.retryOn`,
          message: `unknown condition "${token}" (supported: ${RETRY_ON_CONDITIONS.join(", ")}, ` +
            "or a status code)",
        });
      }
    }
  }
  checkDuration(r.fault?.delay?.fixedDelay, `${path}.fault.delay.fixedDelay`, issues);
  checkDuration(r.corsPolicy?.maxAge, `${path}.corsPolicy.maxAge`, issues);
  r.corsPolicy?.allowOrigins?.forEach((o, i) =>
    checkStringMatch(o, `${path}.corsPolicy.allowOrigins[${i}]`, issues)
  );
  if (r.mirrorPercentage && !r.mirror) {
    issues.push({ path: `${path}.mirrorPercentage`, message: "needs mirror" });
  }
}

/** Checks across fields; paths are relative to `spec`. */
export function validateVirtualService(spec: VirtualServiceSpec): SpecIssue[] {
  const issues: SpecIssue[] = [];
  if (spec.tcp?.length) {
    issues.push({ path: "tcp", message: "TCP routes are not supported yet (use http routes)" });
  }
  if (spec.tls?.length) {
    issues.push({ path: "tls", message: "TLS routes are not supported yet (use http routes)" });
  }
  if (!spec.http?.length && !spec.tcp?.length && !spec.tls?.length) {
    issues.push({ path: "http", message: "must list at least one route" });
  }
  spec.http?.forEach((r, i) => checkRoute(r, `http[${i}]`, issues));
  return issues;
}

/**
 * The share (0..100) of each destination of a route: the single destination gets 100
 * whatever its weight, as in Istio.
 */
export function destinationWeights(route: readonly HttpRouteDestination[]): number[] {
  return route.length === 1 ? [100] : route.map((d) => d.weight ?? 0);
}

export const virtualServiceKind: KindDefinition<VirtualServiceSpec> = {
  kind: "VirtualService",
  apiVersions: [
    "networking.istio.io/v1",
    "networking.istio.io/v1beta1",
    "networking.istio.io/v1alpha3",
  ],
  spec: virtualServiceSpecSchema,
  validate: validateVirtualService,
};

/** Two or more VirtualServices claiming the same host. */
export interface HostConflict {
  /** The host, lower-cased. */
  host: string;
  /** `namespace/name` of every VirtualService naming it, sorted. */
  resources: string[];
}

/**
 * Hosts named by more than one VirtualService. Istio merges such resources unpredictably and
 * users lose routes silently; Weft refuses instead, so the store should reject an apply that
 * makes this list non-empty and name the resources. Overlap between `*`, `*.example.com` and
 * `a.example.com` is not a conflict: the most specific host wins, as in Istio.
 */
export function hostConflicts(
  services: readonly {
    metadata: { namespace: string; name: string };
    spec: Pick<VirtualServiceSpec, "hosts">;
  }[],
): HostConflict[] {
  const owners = new Map<string, Set<string>>();
  for (const vs of services) {
    const id = `${vs.metadata.namespace}/${vs.metadata.name}`;
    for (const host of vs.spec.hosts) {
      const key = host.toLowerCase();
      const set = owners.get(key) ?? new Set<string>();
      set.add(id);
      owners.set(key, set);
    }
  }
  return [...owners]
    .filter(([, ids]) => ids.size > 1)
    .map(([host, ids]) => ({ host, resources: [...ids].sort() }))
    .sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
}
