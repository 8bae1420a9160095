/**
 * @module
 * The one import of the `yaml` package: parsing node config files and policy documents, and
 * printing resources. Everything else imports these functions from here (the architecture
 * test enforces this), so a change of library is one file's business.
 */
export {
  /** One YAML document to a plain value; throws on invalid YAML. */
  parse as parseYaml,
  /** Every document of a multi-document stream, with positioned errors. */
  parseAllDocuments as parseYamlDocuments,
  /** A value as YAML text. */
  stringify as stringifyYaml,
} from "yaml";
