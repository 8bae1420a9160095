/**
 * @module
 * What every operating command shares: finding the admin API (`--admin`, `$WEFT_ADMIN`,
 * 127.0.0.1:15000), calling it with a clear error when it is unreachable, and printing tables.
 */
import { parseHostPort, UserError } from "../lib/mod.ts";
import type { ErrorResponse } from "../lib/admin/api_types.ts";

/** Raised when the node cannot be reached or answers with a server error (exit code 1). */
export class OperationalError extends Error {}

export function adminBase(flag: string | undefined): string {
  const addr = flag ?? Deno.env.get("WEFT_ADMIN") ?? "127.0.0.1:15000";
  const parsed = parseHostPort(addr.replace(/^https?:\/\//, ""));
  if (typeof parsed === "string") throw new UserError(`--admin: ${parsed}`);
  return `http://${addr.replace(/^https?:\/\//, "")}`;
}

/** A parsed admin API answer of any status. */
export interface AdminResponse {
  status: number;
  body: Record<string, unknown>;
}

/**
 * Calls the admin API and parses its JSON answer whatever the status; an unreachable node or
 * a non-JSON answer is an {@linkcode OperationalError}.
 */
export async function adminRequest(
  base: string,
  method: string,
  path: string,
  body?: BodyInit,
  headers?: Record<string, string>,
): Promise<AdminResponse> {
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, {
      method,
      body,
      headers,
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw new OperationalError(
      `cannot reach the Weft admin API at ${base}: ${
        err instanceof Error ? err.message : String(err)
      } (is 'weft agent' running? use --admin or WEFT_ADMIN)`,
    );
  }
  const text = await res.text();
  try {
    return { status: res.status, body: text ? JSON.parse(text) : {} };
  } catch {
    throw new OperationalError(
      `admin API answered ${res.status} with non-JSON: ${text.slice(0, 200)}`,
    );
  }
}

/**
 * Calls the admin API and returns parsed JSON, typed as the endpoint's response type from
 * lib/admin/api_types.ts; 4xx become UserErrors, the rest operational.
 */
export async function adminCall<T = unknown>(
  base: string,
  method: string,
  path: string,
  body?: BodyInit,
  headers?: Record<string, string>,
): Promise<T> {
  const { status, body: json } = await adminRequest(base, method, path, body, headers);
  if (status >= 400) {
    const e = json as Partial<ErrorResponse>;
    const msg = e.error ?? `HTTP ${status}`;
    if (status < 500) throw new UserError(msg, e.details ?? []);
    throw new OperationalError(msg);
  }
  return json as T;
}

/** Formats rows as a left-aligned table with an upper-case header, like kubectl. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const fmt = (r: string[]) => r.map((c, i) => (c ?? "").padEnd(widths[i])).join("   ").trimEnd();
  return [fmt(header.map((h) => h.toUpperCase())), ...rows.map(fmt)].join("\n");
}
