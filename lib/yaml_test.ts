/**
 * @module
 * The parsing limits of lib/yaml.ts on both entry points (a node config file and a policy
 * stream): too deep a nesting and too many alias expansions are UserErrors naming the limit;
 * documents within the limits parse as before.
 */
import { assertEquals, assertThrows } from "../tests/support/assert.ts";
import { UserError } from "./errors.ts";
import { parseYaml, parseYamlDocuments, YAML_MAX_ALIAS_COUNT, YAML_MAX_DEPTH } from "./yaml.ts";

const nested = (n: number) => `a: ${"[".repeat(n - 1)}1${"]".repeat(n - 1)}`;
const aliases = (n: number) => `a: &x [1]\nb: [${Array(n).fill("*x").join(", ")}]`;

Deno.test("yaml: nesting beyond the limit is a UserError naming it, at the limit it parses", () => {
  const n = YAML_MAX_DEPTH - 1; // the top mapping is the first level
  assertEquals(
    JSON.stringify(parseYaml(nested(YAML_MAX_DEPTH))),
    `{"a":${"[".repeat(n)}1${"]".repeat(n)}}`,
  );
  for (const parse of [parseYaml, parseYamlDocuments]) {
    const e = assertThrows(() => parse(nested(YAML_MAX_DEPTH + 1)), UserError);
    assertEquals(e.message, `invalid YAML: nesting deeper than the limit of 64 levels at line 1`);
  }
  const block = Array.from({ length: 100 }, (_, i) => `${"  ".repeat(i)}k:`).join("\n");
  assertThrows(() => parseYamlDocuments(block), UserError, "at line 65");
});

Deno.test("yaml: aliases expanding beyond the limit are a UserError naming it", () => {
  assertEquals(parseYaml(aliases(YAML_MAX_ALIAS_COUNT - 1)), {
    a: [1],
    b: Array(YAML_MAX_ALIAS_COUNT - 1).fill([1]),
  });
  assertThrows(
    () => parseYaml(aliases(YAML_MAX_ALIAS_COUNT + 1)),
    UserError,
    `aliases expand beyond the limit of ${YAML_MAX_ALIAS_COUNT} nodes`,
  );
});
