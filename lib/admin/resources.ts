/**
 * @module
 * Admin API routes of the policy store (hono): apply, list, get and delete resources, and
 * the store's state with the digests every node advertises, so `weft apply --wait` and
 * `weft status` can show which nodes hold the latest version. Mount the returned app with
 * `app.route("/", resourceRoutes(deps))`. Errors follow the contract:
 * `{"error": "...", "details": [{"path", "message"}]}`; a request with any invalid resource
 * applies nothing.
 */
import { virtualServiceConflicts } from "../resources/hosts.ts";
import { Hono } from "hono";
import { errorMessage, UserError } from "../errors.ts";
import { findKind, type InputFormat, parseResources } from "../resources/registry.ts";
import { formatHlc } from "../store/hlc.ts";
import type { PolicyStore, StoredEntry } from "../store/store.ts";

/** The digest one cluster member advertises in its membership metadata. */
export interface MemberDigest {
  node: string;
  digest: string;
  /** Only live members are expected to converge; dead or left ones are shown but ignored. */
  alive: boolean;
}

/** What the resource routes need. */
export interface ResourceRouteDeps {
  store: PolicyStore;
  /** This node's name, listed among the per-node digests. */
  nodeName: string;
  /** Digests of the other members (from SWIM metadata); omit on a single node. */
  memberDigests?: () => readonly MemberDigest[];
  /** Largest accepted request body; resources are small, so 4 MiB is generous. */
  maxBodyBytes?: number;
}

/** JSON form of a stored resource. */
export function entryJson(e: StoredEntry): Record<string, unknown> {
  return {
    resource: e.resource,
    ts: formatHlc(e.ts),
    origin: e.origin,
    version: e.version,
    updatedAt: new Date(e.ts.wall).toISOString(),
  };
}

function errorBody(message: string, details: { path: string; message: string }[] = []) {
  return { error: message, details };
}

/**
 * The body types `POST /v1/resources` accepts and how each is parsed. None is one a browser may
 * send cross-origin without a preflight (`text/plain`, forms), so a web page cannot post policy.
 */
const BODY_TYPES: Readonly<Record<string, InputFormat>> = {
  "application/json": "json",
  "application/yaml": "yaml",
  "application/x-yaml": "yaml",
  "text/yaml": "yaml",
};

/** The format of a `Content-Type` (parameters such as `charset` ignored), if accepted. */
function formatOf(contentType: string | undefined): InputFormat | undefined {
  const mediaType = (contentType ?? "").split(";")[0].trim().toLowerCase();
  return Object.hasOwn(BODY_TYPES, mediaType) ? BODY_TYPES[mediaType] : undefined;
}

/**
 * Reads a request body of at most `max` bytes, counting as it reads, so a chunked body (no
 * `Content-Length`) is never held beyond the limit; `undefined` when it is longer (the rest is
 * not read: the stream is cancelled).
 */
async function readBody(req: Request, max: number): Promise<Uint8Array | undefined> {
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return bytes;
}

/** Builds the sub-app with `/v1/resources` and `/v1/store`. */
export function resourceRoutes(deps: ResourceRouteDeps): Hono {
  const app = new Hono();
  const maxBody = deps.maxBodyBytes ?? 4 * 1024 * 1024;
  const { store } = deps;

  const kindOf = (name: string | undefined) => {
    if (!name) return undefined;
    const def = findKind(name);
    if (!def) {
      throw new UserError(`Unknown kind "${name}"`, [{ path: "kind", message: "unknown kind" }]);
    }
    return def.kind;
  };

  app.onError((err, c) => {
    if (err instanceof UserError) return c.json(errorBody(err.message, err.details), 400);
    return c.json(errorBody(errorMessage(err)), 500);
  });

  app.post("/v1/resources", async (c) => {
    const contentType = c.req.header("content-type");
    const format = formatOf(contentType);
    if (format === undefined) {
      const message = `Content-Type: expected one of ${Object.keys(BODY_TYPES).join(", ")}, got ${
        contentType === undefined ? "none" : JSON.stringify(contentType)
      }`;
      return c.json(errorBody(message, [{ path: "headers.content-type", message }]), 415);
    }
    const tooLarge = () => {
      const message = `Request body exceeds ${maxBody} bytes`;
      return c.json(errorBody(message, [{ path: "(body)", message }]), 413);
    };
    if (Number(c.req.header("content-length") ?? "0") > maxBody) return tooLarge();
    const bytes = await readBody(c.req.raw, maxBody);
    if (bytes === undefined) return tooLarge();
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      throw new UserError("Request body is not UTF-8 text", [
        { path: "(body)", message: "not UTF-8" },
      ]);
    }
    const resources = parseResources(text, format);
    // Two VirtualServices routing one host would silently shadow each other's routes (a
    // common Istio surprise): reject the apply and name both.
    const conflicts = virtualServiceConflicts(store.resources("VirtualService"), resources);
    if (conflicts.length > 0) {
      throw new UserError(`${conflicts[0].path}: ${conflicts[0].message}`, conflicts);
    }
    const dryRun = ["true", "1", "all"].includes(c.req.query("dryRun") ?? "");
    const results = await store.apply(resources, { dryRun });
    return c.json({ dryRun, results, digest: store.digest() });
  });

  app.get("/v1/resources", (c) => {
    const kind = kindOf(c.req.query("kind") || undefined);
    const namespace = c.req.query("namespace") || undefined;
    return c.json({ items: store.list({ kind, namespace }).map(entryJson) });
  });

  app.get("/v1/resources/:kind/:namespace/:name", (c) => {
    const kind = kindOf(c.req.param("kind"))!;
    const { namespace, name } = c.req.param();
    const e = store.get(kind, namespace, name);
    if (!e) return c.json(errorBody(`${kind} ${namespace}/${name} not found`), 404);
    return c.json(entryJson(e));
  });

  app.delete("/v1/resources/:kind/:namespace/:name", async (c) => {
    const kind = kindOf(c.req.param("kind"))!;
    const { namespace, name } = c.req.param();
    if (!(await store.delete(kind, namespace, name))) {
      return c.json(errorBody(`${kind} ${namespace}/${name} not found`), 404);
    }
    return c.json({ kind, namespace, name, result: "deleted", digest: store.digest() });
  });

  app.get("/v1/store", (c) => {
    const stats = store.stats();
    const others = deps.memberDigests?.() ?? [];
    const nodes = [
      { node: deps.nodeName, digest: stats.digest, alive: true },
      ...others.filter((m) => m.node !== deps.nodeName),
    ].map((m) => ({ ...m, converged: m.digest === stats.digest }));
    const lagging = nodes.filter((n) => n.alive && !n.converged).map((n) => n.node);
    return c.json({
      node: deps.nodeName,
      count: stats.count,
      tombstones: stats.tombstones,
      digest: stats.digest,
      version: stats.version,
      lastChange: stats.lastChange,
      nodes,
      converged: lagging.length === 0,
      lagging,
    });
  });

  return app;
}
