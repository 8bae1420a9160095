/**
 * @module
 * Errors that reach people. A {@linkcode UserError} is the user's to fix (exit code 2, HTTP
 * 400): it names the field or flag and the reason, and is printed as one line, never as a
 * stack trace. A {@linkcode ListenError} is an address that could not be listened on (exit
 * code 1), also one line.
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

/**
 * A listening address that could not be opened: which listener (a flag such as
 * `--admin-addr`, or a listener's name), the address, and why in plain words.
 */
export class ListenError extends Error {
  constructor(readonly what: string, readonly address: string, readonly reason: string) {
    super(`cannot listen on ${address} (${what}): ${reason}`);
    this.name = "ListenError";
  }
}

/**
 * Socket layers word the same failure differently (a Deno error class, an errno from the epoll
 * backend, Node's `EADDRINUSE` inside libp2p's multi-line message): the usual ones, plainly.
 */
const listenReasons: [RegExp, string][] = [
  [/EADDRINUSE|errno 98\b|address already in use/i, "address already in use"],
  [/EADDRNOTAVAIL|errno 99\b|cannot assign requested address/i, "no such address on this host"],
  [
    /EACCES|errno 13\b|permission denied \(os error/i,
    "permission denied (ports below 1024 need privileges)",
  ],
];

/** Why opening a listener failed, in plain words; null when the error is not about the address. */
export function listenFailureReason(err: unknown): string | null {
  if (err instanceof Deno.errors.AddrInUse) return "address already in use";
  if (err instanceof Deno.errors.AddrNotAvailable) return "no such address on this host";
  const text = err instanceof Error ? err.message : String(err);
  for (const [pattern, reason] of listenReasons) if (pattern.test(text)) return reason;
  return null;
}

/**
 * Runs `open`; a failure about the address becomes a {@linkcode ListenError} naming `what` and
 * `address`, anything else is rethrown as it is.
 */
export async function listening<T>(
  what: string,
  address: string,
  open: () => Promise<T>,
): Promise<T> {
  try {
    return await open();
  } catch (err) {
    const reason = err instanceof ListenError ? null : listenFailureReason(err);
    if (reason === null) throw err;
    throw new ListenError(what, address, reason);
  }
}
