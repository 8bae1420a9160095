/**
 * @module
 * The kind registry and the parser for user input: multi-document YAML or JSON (one object,
 * an array, or a `List` with `items`) becomes validated {@linkcode Resource}s. Every error of
 * every document is collected with its path (`[doc 2] spec.hosts[0]: ...`) and nothing is
 * returned unless everything is valid, so callers never apply part of a request.
 */
import { parseYamlDocuments, stringifyYaml, yamlDocumentValue } from "../yaml.ts";
import { z } from "../schema.ts";
import { type FieldIssue, formatPath, UserError } from "../errors.ts";
import type { KindDefinition, Resource } from "./kind.ts";
import { serviceEntryKind } from "./service_entry.ts";
import { virtualServiceKind } from "./virtual_service.ts";
import { destinationRuleKind } from "./destination_rule.ts";
import { RESOURCE_LIMITS, resourceLimitIssues, type ResourceLimits } from "./limits.ts";

/** Every kind Weft accepts, by canonical name. */
export const kindDefinitions: readonly KindDefinition[] = [
  serviceEntryKind as KindDefinition,
  virtualServiceKind as KindDefinition,
  destinationRuleKind as KindDefinition,
];

const byLowerName = new Map<string, KindDefinition>();
for (const k of kindDefinitions) byLowerName.set(k.kind.toLowerCase(), k);

/** Short names and plurals as kubectl/istioctl accept them. */
const aliases: Record<string, string> = {
  se: "serviceentry",
  serviceentries: "serviceentry",
  vs: "virtualservice",
  virtualservices: "virtualservice",
  dr: "destinationrule",
  destinationrules: "destinationrule",
};

/**
 * Finds a kind by canonical name, lower-case name, plural, short name or `kind.group`
 * (`virtualservice.networking.istio.io`); undefined when unknown.
 */
export function findKind(name: string): KindDefinition | undefined {
  let n = name.toLowerCase();
  if (n.endsWith(".networking.istio.io")) n = n.slice(0, -".networking.istio.io".length);
  return byLowerName.get(aliases[n] ?? n);
}

/** Key of a resource in the store: `kind/namespace/name`. */
export function resourceKey(r: { kind: string; metadata: { namespace: string; name: string } }) {
  return `${r.kind}/${r.metadata.namespace}/${r.metadata.name}`;
}

/** kubectl-style name of a resource: `virtualservice.networking.istio.io/reviews`. */
export function resourceDisplayName(r: { kind: string; metadata: { name: string } }): string {
  return `${r.kind.toLowerCase()}.networking.istio.io/${r.metadata.name}`;
}

const dnsLabel = z.string().max(63).regex(
  /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/,
  "must be a DNS label (lower-case letters, digits and '-', at most 63 characters)",
);

const metadataSchema = z.object({
  name: dnsLabel,
  namespace: dnsLabel.default("default"),
  labels: z.record(z.string(), z.string()).default({}),
}).strict();

const envelopeSchema = z.object({
  apiVersion: z.string(),
  kind: z.string(),
  metadata: metadataSchema,
  spec: z.unknown(),
}).strict();

function zodIssues(error: z.ZodError, prefix: readonly PropertyKey[]): FieldIssue[] {
  return error.issues.map((i) => {
    let message = i.message;
    if (i.code === "unrecognized_keys") {
      // Name each unsupported field in the path, so the user sees exactly what to remove.
      return i.keys.map((k) => ({
        path: formatPath([...prefix, ...i.path, k]),
        message: `unknown field "${k}" (not supported by Weft)`,
      }));
    }
    if (i.code === "invalid_type" && i.input === undefined) message = "required";
    return [{ path: formatPath([...prefix, ...i.path]) || "(document)", message }];
  }).flat();
}

/**
 * Validates one decoded object as a resource. Returns the resource or the issues (paths
 * relative to the document, e.g. `spec.hosts[0]`). The size limits (`./limits.ts`) are
 * checked first and alone: an object over one is refused before its schema is parsed.
 */
export function validateResource(
  input: unknown,
  limits: ResourceLimits = RESOURCE_LIMITS,
): Resource | FieldIssue[] {
  if (input === null || typeof input !== "object" || Array.isArray(input)) {
    return [{
      path: "(document)",
      message: "must be an object with apiVersion, kind, metadata, spec",
    }];
  }
  const over = resourceLimitIssues(input, limits);
  if (over.length > 0) return over;
  const env = envelopeSchema.safeParse(input);
  const raw = input as Record<string, unknown>;
  const issues: FieldIssue[] = [];
  if (!env.success) {
    issues.push(...zodIssues(env.error, []).filter((i) => !i.path.startsWith("spec")));
  }
  const kindName = typeof raw.kind === "string" ? raw.kind : undefined;
  const def = kindName ? kindDefinitions.find((k) => k.kind === kindName) : undefined;
  if (kindName !== undefined && !def) {
    issues.push({
      path: "kind",
      message: `unknown kind "${kindName}" (supported: ${
        kindDefinitions.map((k) => k.kind).join(", ")
      })`,
    });
  }
  if (def && typeof raw.apiVersion === "string" && !def.apiVersions.includes(raw.apiVersion)) {
    issues.push({
      path: "apiVersion",
      message: `"${raw.apiVersion}" is not accepted for ${def.kind} (use ${
        def.apiVersions.join(", ")
      })`,
    });
  }
  let spec: unknown;
  if (def) {
    if (raw.spec === undefined) {
      issues.push({ path: "spec", message: "required" });
    } else {
      const parsed = def.spec.safeParse(raw.spec);
      if (!parsed.success) issues.push(...zodIssues(parsed.error, ["spec"]));
      else {
        spec = parsed.data;
        for (const i of def.validate?.(spec) ?? []) {
          const path = i.path === "spec" || i.path.startsWith("spec.") || i.path.startsWith("spec[")
            ? i.path
            : i.path.startsWith("[")
            ? `spec${i.path}`
            : `spec.${i.path}`;
          issues.push({ path, message: i.message });
        }
      }
    }
  }
  if (issues.length > 0 || !env.success || !def) return issues;
  return {
    apiVersion: env.data.apiVersion,
    kind: def.kind,
    metadata: env.data.metadata,
    spec,
  };
}

/** Input format; `undefined` sniffs it (JSON when the first character is `{` or `[`). */
export type InputFormat = "yaml" | "json";

function splitDocuments(text: string, format: InputFormat | undefined): {
  docs: unknown[];
  issues: FieldIssue[];
} {
  const trimmed = text.trimStart();
  const fmt = format ?? (trimmed.startsWith("{") || trimmed.startsWith("[") ? "json" : "yaml");
  if (fmt === "json") {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      return {
        docs: [],
        issues: [{
          path: "(json)",
          message: `invalid JSON: ${err instanceof Error ? err.message : String(err)}`,
        }],
      };
    }
    return { docs: unwrapList(value), issues: [] };
  }
  const docs: unknown[] = [];
  const issues: FieldIssue[] = [];
  const parsed = parseYamlDocuments(text, { uniqueKeys: true });
  // parseYamlDocuments returns an EmptyStream (not an array) for empty input.
  const list = Array.isArray(parsed) ? parsed : [];
  list.forEach((doc, i) => {
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const line = e.linePos?.[0];
        issues.push({
          path: `[doc ${i + 1}]`,
          // The parser's first line repeats the position and ends where its code frame starts.
          message: `invalid YAML${line ? ` at line ${line.line}, column ${line.col}` : ""}: ${
            e.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "")
          }`,
        });
      }
      return;
    }
    const value = yamlDocumentValue(doc);
    if (value === null || value === undefined) return; // empty document between `---`
    docs.push(...unwrapList(value));
  });
  return { docs, issues };
}

/** A JSON array or a Kubernetes `List` (`{kind: "List", items: [...]}`) is several resources. */
function unwrapList(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (
    value && typeof value === "object" && (value as Record<string, unknown>).kind === "List" &&
    Array.isArray((value as Record<string, unknown>).items)
  ) {
    return (value as { items: unknown[] }).items;
  }
  return [value];
}

/**
 * Parses and validates user input. Throws a {@linkcode UserError} listing every problem of
 * every document (paths prefixed `[doc N]`) when anything is wrong; returns all resources
 * otherwise. Duplicate keys within one request are an error too (which one would win?).
 */
export function parseResources(text: string, format?: InputFormat): Resource[] {
  const { docs, issues } = splitDocuments(text, format);
  const resources: Resource[] = [];
  const seen = new Map<string, number>();
  docs.forEach((doc, i) => {
    const r = validateResource(doc);
    if (Array.isArray(r)) {
      for (const issue of r) {
        issues.push({ path: `[doc ${i + 1}] ${issue.path}`, message: issue.message });
      }
      return;
    }
    const key = resourceKey(r);
    const first = seen.get(key);
    if (first !== undefined) {
      issues.push({
        path: `[doc ${i + 1}] metadata.name`,
        message: `${key} is also defined in document ${first}`,
      });
      return;
    }
    seen.set(key, i + 1);
    resources.push(r);
  });
  if (issues.length === 0 && resources.length === 0) {
    issues.push({ path: "(input)", message: "no resources found" });
  }
  if (issues.length > 0) {
    const first = issues[0];
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : "";
    throw new UserError(`${first.path}: ${first.message}${more}`, issues);
  }
  return resources;
}

/** Renders resources as multi-document YAML (what `weft get -o yaml` prints; re-appliable). */
export function resourcesToYaml(resources: readonly Resource[]): string {
  return resources.map((r) => stringifyYaml(r, { lineWidth: 0 })).join("---\n");
}
