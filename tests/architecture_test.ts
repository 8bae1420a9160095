/**
 * @module
 * The dependency rules of docs/architecture.md, checked on the source:
 *
 * - lib/ is a leaf; proxy/ and gossip/ import only lib/ and never each other;
 * - no import cycle anywhere (static imports, `import type` included);
 * - each third-party library is imported by its one owner module (or folder);
 * - test helpers live in tests/support/; product code imports no test code, demo or bench,
 *   and tests reach demo/ only through tests/support/.
 *
 * Imports are read with a line-anchored pattern: `deno fmt` puts every static import and
 * re-export at the start of a line, so text in comments and strings is not taken for one.
 */
import { assertEquals } from "./support/assert.ts";

const root = new URL("..", import.meta.url).pathname;

/** Folders that hold no source of the repository's own. */
const SKIPPED_DIRS = new Set([".git", "node_modules", "dist", "weft-data"]);

function* walk(dir: string): Generator<string> {
  for (const e of Deno.readDirSync(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) {
      if (!SKIPPED_DIRS.has(e.name) && !e.name.startsWith(".")) yield* walk(p);
    } else if (e.name.endsWith(".ts")) yield p;
  }
}

/** Every TypeScript file of the repository, as a path relative to its root. */
const files = [...walk(root.replace(/\/$/, ""))].map((f) => f.slice(root.length)).sort();

/** One import of a file: the specifier as written, and whether it is `import(...)`. */
interface ImportSpec {
  spec: string;
  dynamic: boolean;
}

const STATIC_IMPORT = /^(?:import|export)\s(?:[^;"']*?\sfrom\s*)?["']([^"']+)["']/gm;
const DYNAMIC_IMPORT = /\bimport\(\s*["']([^"']+)["']\s*\)/g;

function importsOf(source: string): ImportSpec[] {
  const found: ImportSpec[] = [];
  for (const m of source.matchAll(STATIC_IMPORT)) found.push({ spec: m[1], dynamic: false });
  for (const m of source.matchAll(DYNAMIC_IMPORT)) found.push({ spec: m[1], dynamic: true });
  return found;
}

const importsByFile = new Map(
  files.map((f) => [f, importsOf(Deno.readTextFileSync(`${root}${f}`))]),
);

/** The repository file a relative specifier of `from` names, or undefined for other specifiers. */
function resolveLocal(from: string, spec: string): string | undefined {
  if (!spec.startsWith(".")) return undefined;
  return new URL(spec, `file://${root}${from}`).pathname.slice(root.length);
}

/** Static imports of repository files, as edges `file -> imported file`. */
const graph = new Map<string, string[]>(files.map((f) => [
  f,
  importsByFile.get(f)!.filter((i) => !i.dynamic)
    .map((i) => resolveLocal(f, i.spec))
    .filter((t): t is string => t !== undefined),
]));

function topDir(rel: string): string {
  return rel.split("/")[0];
}

Deno.test("lib/, proxy/ and gossip/ keep their dependency direction", () => {
  const violations: string[] = [];
  for (const dir of ["lib", "proxy", "gossip"]) {
    for (const file of files) {
      if (topDir(file) !== dir || file.endsWith("_test.ts")) continue;
      for (const target of graph.get(file)!) {
        const allowed = dir === "lib" ? ["lib"] : [dir, "lib"];
        if (!allowed.includes(topDir(target))) violations.push(`${file} imports ${target}`);
      }
    }
  }
  assertEquals(violations, []);
});

/**
 * The strongly connected components of the import graph that contain a cycle (Tarjan's
 * algorithm), each as one shortest cycle through its first file, written `a -> b -> a`.
 */
function importCycles(edges: ReadonlyMap<string, readonly string[]>): string[] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      const selfLoop = (edges.get(v) ?? []).includes(v);
      if (component.length > 1 || selfLoop) components.push(component.sort());
    }
  };
  for (const v of [...edges.keys()].sort()) if (!index.has(v)) visit(v);
  return components.map((component) => {
    // Breadth-first from the component's first file back to itself, inside the component.
    const members = new Set(component);
    const start = component[0];
    const previous = new Map<string, string>();
    const queue = [start];
    while (queue.length > 0) {
      const v = queue.shift()!;
      for (const w of edges.get(v) ?? []) {
        if (!members.has(w)) continue;
        if (w === start) {
          const path: string[] = [];
          for (let u = v; u !== start; u = previous.get(u)!) path.unshift(u);
          return [start, ...path, start].join(" -> ");
        }
        if (!previous.has(w)) {
          previous.set(w, v);
          queue.push(w);
        }
      }
    }
    return component.join(", ");
  }).sort();
}

Deno.test("the cycle finder reports a cycle and ignores a diamond", () => {
  const diamond = new Map([["a", ["b", "c"]], ["b", ["d"]], ["c", ["d"]], ["d", []]]);
  assertEquals(importCycles(diamond), []);
  const cycle = new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a", "d"]], ["d", ["d"]]]);
  assertEquals(importCycles(cycle), ["a -> b -> c -> a", "d -> d"]);
});

Deno.test("no module imports itself through others: the import graph has no cycle", () => {
  assertEquals(importCycles(graph), []);
});

const denoJson = JSON.parse(Deno.readTextFileSync(`${root}deno.json`)) as {
  imports: Record<string, string>;
};

/**
 * The one module (or folder, written with a trailing `/`) allowed to import each third-party
 * library of deno.json. A library added to deno.json without an owner here fails the test.
 */
const OWNERS: Record<string, string> = {
  "cbor-x": "lib/codec.ts",
  // cbor-x's optional native decoder; never imported by name, owned with cbor-x.
  "cbor-extract": "lib/codec.ts",
  "hono": "lib/admin/",
  "zod": "lib/schema.ts",
  "yaml": "lib/yaml.ts",
  "libp2p": "gossip/pubsub.ts",
  "@libp2p/gossipsub": "gossip/pubsub.ts",
  "@libp2p/tcp": "gossip/pubsub.ts",
  "@chainsafe/libp2p-noise": "gossip/pubsub.ts",
  "@chainsafe/libp2p-yamux": "gossip/pubsub.ts",
  "@libp2p/identify": "gossip/pubsub.ts",
  "@libp2p/crypto": "gossip/pubsub.ts",
  "@multiformats/multiaddr": "gossip/pubsub.ts",
};

/** The deno.json library a bare specifier names (`@libp2p/crypto/keys` -> `@libp2p/crypto`). */
function libraryOf(spec: string): string | undefined {
  return Object.keys(denoJson.imports)
    .filter((name) => spec === name || spec.startsWith(`${name}/`))
    .sort((a, b) => b.length - a.length)[0];
}

function owns(owner: string, file: string): boolean {
  return owner.endsWith("/") ? file.startsWith(owner) : file === owner;
}

Deno.test("every third-party library in deno.json has one owner module", () => {
  const libraries = Object.entries(denoJson.imports)
    .filter(([, target]) => target.startsWith("npm:") || target.startsWith("jsr:"))
    .map(([name]) => name);
  assertEquals(libraries.filter((name) => !(name in OWNERS)), []);
});

Deno.test("each third-party library is imported only by its owner", () => {
  const violations: string[] = [];
  for (const file of files) {
    // A test may drive a library directly to play a foreign peer (store_replication_test.ts
    // builds a bare libp2p node); product code, test helpers, bench and demo may not.
    if (file.endsWith("_test.ts")) continue;
    for (const { spec } of importsByFile.get(file)!) {
      if (spec.startsWith(".") || spec.startsWith("node:")) continue;
      const library = libraryOf(spec);
      if (library === undefined) {
        violations.push(`${file} imports ${spec}, which is not a library of deno.json`);
      } else if (!owns(OWNERS[library] ?? "", file)) {
        violations.push(`${file} imports ${spec}; only ${OWNERS[library]} may`);
      }
    }
  }
  assertEquals(violations, []);
});

/** What a file is, for the rules on test code. */
type Role = "product" | "test" | "support" | "bench" | "demo";

function roleOf(file: string): Role {
  if (file.endsWith("_test.ts")) return "test";
  if (file.startsWith("tests/support/")) return "support";
  if (file.startsWith("tests/")) return "test";
  if (file.startsWith("bench/")) return "bench";
  if (file.startsWith("demo/")) return "demo";
  return "product";
}

/**
 * What each role may import. Product code (main.ts, cli/, lib/, proxy/, gossip/) imports
 * product code only. Test helpers live in tests/support/, which alone reaches demo/ (the
 * demo's client and upstream serve as test fixtures). Benchmarks are tooling beside the
 * tests: they may use tests/support/ fixtures (hand-built snapshots, endpoints), never demo/.
 * Nothing imports a test file.
 */
const MAY_IMPORT: Record<Role, readonly Role[]> = {
  product: ["product"],
  test: ["product", "support"],
  support: ["product", "support", "demo"],
  bench: ["product", "support", "bench"],
  demo: ["product", "demo"],
};

Deno.test("test code stays in tests: product code imports no test helper, demo or bench", () => {
  const violations: string[] = [];
  for (const file of files) {
    const role = roleOf(file);
    for (const target of graph.get(file)!) {
      if (!MAY_IMPORT[role].includes(roleOf(target))) {
        violations.push(`${file} (${role}) imports ${target} (${roleOf(target)})`);
      }
    }
  }
  assertEquals(violations, []);
});

Deno.test("test helpers live in tests/support/", () => {
  const violations: string[] = [];
  // Outside tests/support/, tests/ holds test files only.
  for (const file of files) {
    if (file.startsWith("tests/") && roleOf(file) === "test" && !file.endsWith("_test.ts")) {
      violations.push(`${file} is not a test: move it to tests/support/`);
    }
  }
  // A product module that only tests and benchmarks import is a test helper in disguise. A
  // folder's public surface (mod.ts) is exempt: it is there for whoever needs it.
  const importers = new Map<string, Set<Role>>();
  for (const file of files) {
    for (const target of graph.get(file)!) {
      importers.set(target, (importers.get(target) ?? new Set()).add(roleOf(file)));
    }
  }
  for (const [target, roles] of importers) {
    if (roleOf(target) === "product" && !roles.has("product") && !target.endsWith("/mod.ts")) {
      violations.push(`${target} is imported by ${[...roles].join(" and ")} code only`);
    }
  }
  assertEquals(violations.sort(), []);
});

Deno.test("every module opens with a @module doc comment", () => {
  const undocumented = files.filter((f) => {
    const head = Deno.readTextFileSync(`${root}${f}`).slice(0, 200);
    return !/^\/\*\*\s*\n\s*\*\s*@module\b/.test(head);
  });
  assertEquals(undocumented, []);
});
