/**
 * @module
 * The request path's layering, checked on the source: each layer imports only the layers
 * below it (session -> logical -> concrete -> endpoint), a layer module stays small enough to
 * read, and local replies are written in one place (the session's `reply`), with each reply's
 * status, flag and message named once (local_reply.ts).
 */

const proxyDir = new URL(".", import.meta.url);

/** The layer of each request-path module, top (0) to bottom. */
const layers: Record<string, number> = {
  "session_http1.ts": 0,
  "logical.ts": 1,
  "concrete.ts": 2,
  "upgrade.ts": 3,
  "endpoint_http1.ts": 4,
  "outcome.ts": 4,
  // What every layer shares: the request's state, then the leaves it is made of.
  "exchange.ts": 5,
  "retry_state.ts": 6,
  "upstream_failure.ts": 6,
  "request_id.ts": 6,
  "local_reply.ts": 7,
};

function source(file: string): string {
  return Deno.readTextFileSync(new URL(file, proxyDir));
}

function localImports(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/from\s+"\.\/([a-z0-9_]+\.ts)"/g)) found.push(m[1]);
  return found;
}

Deno.test("request-path layers import only the layers below them", () => {
  const violations: string[] = [];
  for (const [file, layer] of Object.entries(layers)) {
    for (const imported of localImports(source(file))) {
      const below = layers[imported];
      if (below !== undefined && below <= layer) {
        violations.push(`${file} (layer ${layer}) imports ${imported} (layer ${below})`);
      }
    }
  }
  if (violations.length > 0) throw new Error(violations.join("\n"));
});

Deno.test("request-path modules stay under 500 lines", () => {
  for (const file of Object.keys(layers)) {
    const lines = source(file).split("\n").length;
    if (lines > 500) throw new Error(`${file} has ${lines} lines`);
  }
});

Deno.test("local replies are written by the session alone and named in local_reply.ts", () => {
  for (const file of Object.keys(layers)) {
    const text = source(file);
    if (
      file !== "session_http1.ts" && file !== "local_reply.ts" && /localReplyBytes\(/.test(text)
    ) {
      throw new Error(`${file} writes a local reply's bytes itself`);
    }
    if (file !== "local_reply.ts" && /"upstream [a-z ]+"/.test(text)) {
      throw new Error(`${file} spells out an upstream failure's message`);
    }
  }
});
