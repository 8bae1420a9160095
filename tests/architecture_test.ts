/**
 * The dependency rules of docs/architecture.md, checked on the source: lib/ is a leaf,
 * proxy/ and gossip/ import only lib/ and never each other, and each third-party library is
 * imported from one place.
 */
import { assertEquals } from "./support/assert.ts";

const root = new URL("..", import.meta.url).pathname;

function* walk(dir: string): Generator<string> {
  for (const e of Deno.readDirSync(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) yield* walk(p);
    else if (e.name.endsWith(".ts")) yield p;
  }
}

function imports(file: string): string[] {
  const src = Deno.readTextFileSync(file);
  const out: string[] = [];
  for (
    const m of src.matchAll(
      /(?:import|export)[^'"]*?from\s*["']([^"']+)["']|import\s*\(?\s*["']([^"']+)["']/g,
    )
  ) {
    out.push(m[1] ?? m[2]);
  }
  return out;
}

function topDir(absPath: string): string {
  return absPath.slice(root.length).split("/")[0];
}

Deno.test("lib/, proxy/ and gossip/ keep their dependency direction", () => {
  const violations: string[] = [];
  for (const dir of ["lib", "proxy", "gossip"]) {
    for (const file of walk(`${root}${dir}`)) {
      if (file.endsWith("_test.ts")) continue;
      for (const spec of imports(file)) {
        if (!spec.startsWith(".")) continue;
        const target = new URL(spec, `file://${file}`).pathname;
        const to = topDir(target);
        const allowed = dir === "lib" ? ["lib"] : [dir, "lib"];
        if (!allowed.includes(to)) violations.push(`${file.slice(root.length)} imports ${spec}`);
      }
    }
  }
  assertEquals(violations, []);
});

Deno.test("each third-party library is imported from one place", () => {
  const owners: Record<string, RegExp> = {
    "cbor-x": /^lib\/codec\.ts$/,
    "hono": /^lib\/admin\//,
    "libp2p": /^gossip\/pubsub\.ts$/,
    "@libp2p/": /^gossip\/pubsub\.ts$/,
    "@chainsafe/": /^gossip\/pubsub\.ts$/,
  };
  const violations: string[] = [];
  for (const dir of ["lib", "proxy", "gossip", "cli"]) {
    for (const file of walk(`${root}${dir}`)) {
      if (file.endsWith("_test.ts")) continue;
      const rel = file.slice(root.length);
      for (const spec of imports(file)) {
        for (const [lib, owner] of Object.entries(owners)) {
          const hit = lib.endsWith("/")
            ? spec.startsWith(lib)
            : spec === lib || spec.startsWith(`${lib}/`);
          if (hit && !owner.test(rel)) violations.push(`${rel} imports ${spec}`);
        }
      }
    }
  }
  assertEquals(violations, []);
});
