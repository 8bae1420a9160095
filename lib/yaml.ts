/**
 * @module
 * The one import of the `yaml` package: parsing node config files and policy documents, and
 * printing resources. Everything else imports these functions from here (the architecture
 * test enforces this), so a change of library is one file's business.
 *
 * Parsing is bounded, because policy documents come from the network (`POST /v1/resources`):
 * a document nested deeper than {@linkcode YAML_MAX_DEPTH} collections is refused before it is
 * composed (a 200 KB `[[[[…` cost 170 MB and a stack overflow), and aliases may expand to at
 * most {@linkcode YAML_MAX_ALIAS_COUNT} nodes (an "alias bomb" grows exponentially). Both
 * failures are {@linkcode UserError}s naming the limit.
 */
import {
  type Document,
  Lexer,
  parse,
  parseAllDocuments,
  type ParseOptions,
  Parser,
  stringify,
} from "yaml";
import { UserError } from "./errors.ts";

/** Deepest nesting of mappings and sequences a document may have (resources need about 10). */
export const YAML_MAX_DEPTH = 64;
/** Most nodes that aliases may expand to in one document (the `yaml` package's default). */
export const YAML_MAX_ALIAS_COUNT = 100;

const COLLECTIONS = new Set(["block-map", "block-seq", "flow-collection"]);

/** Throws a UserError when `text` nests collections deeper than the limit; reads it once. */
function checkDepth(text: string): void {
  const parser = new Parser();
  for (const lexeme of new Lexer().lex(text)) {
    for (const _ of parser.next(lexeme)) { /* documents are composed later */ }
    // The stack holds the open tokens: the document, its open collections, one scalar.
    if (parser.stack.length <= YAML_MAX_DEPTH) continue;
    const depth = parser.stack.filter((t) => COLLECTIONS.has(t.type)).length;
    if (depth > YAML_MAX_DEPTH) {
      const line = text.slice(0, parser.offset).split("\n").length;
      const message = `nesting deeper than the limit of ${YAML_MAX_DEPTH} levels at line ${line}`;
      throw new UserError(`invalid YAML: ${message}`, [{ path: "(yaml)", message }]);
    }
  }
}

/** One YAML document to a plain value; throws on invalid YAML or when a limit is exceeded. */
export function parseYaml(text: string): unknown {
  checkDepth(text);
  return withAliasLimit(() => parse(text, { maxAliasCount: YAML_MAX_ALIAS_COUNT }));
}

/**
 * Every document of a multi-document stream, with positioned errors; throws a UserError when
 * the stream nests too deep. Turn each into a value with {@linkcode yamlDocumentValue}.
 */
export function parseYamlDocuments(
  text: string,
  options?: ParseOptions,
): ReturnType<typeof parseAllDocuments> {
  checkDepth(text);
  return parseAllDocuments(text, options);
}

/** A parsed document's plain value; a UserError when its aliases expand beyond the limit. */
export function yamlDocumentValue(doc: Pick<Document, "toJS">): unknown {
  return withAliasLimit(() => doc.toJS({ maxAliasCount: YAML_MAX_ALIAS_COUNT }));
}

function withAliasLimit<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    // The package's own wording: "Excessive alias count indicates a resource exhaustion attack".
    if (err instanceof ReferenceError && /alias count/i.test(err.message)) {
      const message = `aliases expand beyond the limit of ${YAML_MAX_ALIAS_COUNT} nodes`;
      throw new UserError(`invalid YAML: ${message}`, [{ path: "(yaml)", message }]);
    }
    throw err;
  }
}

/** A value as YAML text. */
export const stringifyYaml: typeof stringify = stringify;
