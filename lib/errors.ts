/**
 * @module
 * Errors that reach people. A {@linkcode UserError} is the user's to fix (exit code 2, HTTP
 * 400): it names the field or flag and the reason, and is printed as one line, never as a
 * stack trace.
 */

/** One problem with one field. `path` is dotted (`spec.http[0].route`), or a flag name. */
export interface FieldIssue {
  path: string;
  message: string;
}

/** A mistake in user input: a flag, a config file, a resource. */
export class UserError extends Error {
  readonly details: FieldIssue[];
  constructor(message: string, details: FieldIssue[] = []) {
    super(message);
    this.name = "UserError";
    this.details = details;
  }
}

/** Formats a zod-like issue path (`["spec", "http", 0, "route"]`) as `spec.http[0].route`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out === "" ? String(part) : `.${String(part)}`;
  }
  return out;
}

/** The message of any thrown value, for logs. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
