/**
 * @module
 * A read-only view of a parsed request for routing decisions: header values looked up by name
 * straight from the head's bytes (head.ts records where each line sits), the path split from
 * its query, and the labels of the calling workload. One view lives per connection and is
 * re-pointed at each request, so matching allocates only the strings it actually reads.
 */
import type { MatchRequest } from "../route_match.ts";

/** The parts of a parsed head (proxy/head.ts `Head`) a header lookup needs. */
export interface HeadLines {
  buf: Uint8Array;
  count: number;
  lineStart: number[];
  nameEnd: number[];
  lineEnd: number[];
}

const decoder = new TextDecoder();

/** True when header line `i` is named `name` (lower-case ASCII), compared without case. */
export function lineNamed(head: HeadLines, i: number, name: string): boolean {
  const start = head.lineStart[i];
  if (head.nameEnd[i] - start !== name.length) return false;
  const buf = head.buf;
  for (let k = 0; k < name.length; k++) {
    const e = name.charCodeAt(k);
    const b = buf[start + k];
    if (b !== e && !(e >= 97 && e <= 122 && (b | 0x20) === e)) return false;
  }
  return true;
}

function lineValue(head: HeadLines, i: number): string {
  const buf = head.buf;
  let vs = head.nameEnd[i] + 1;
  let ve = head.lineEnd[i];
  while (vs < ve && (buf[vs] === 32 || buf[vs] === 9)) vs++;
  while (ve > vs && (buf[ve - 1] === 32 || buf[ve - 1] === 9)) ve--;
  return decoder.decode(buf.subarray(vs, ve));
}

/**
 * The value of header `name` (lower-case) in `head`, or null when absent. Repeated headers are
 * joined with "," as Envoy does before matching them.
 */
export function headValue(head: HeadLines, name: string): string | null {
  let value: string | null = null;
  for (let i = 0; i < head.count; i++) {
    if (lineNamed(head, i, name)) {
      const v = lineValue(head, i);
      value = value === null ? v : `${value},${v}`;
    }
  }
  return value;
}

/** `Headers`-like lookup over a head; `get` takes lower-case names. */
export class HeadHeaders {
  head: HeadLines | null = null;

  get(name: string): string | null {
    return this.head === null ? null : headValue(this.head, name);
  }
}

/**
 * The per-connection request view handed to the route table, hash keys and filters. Fields
 * are overwritten for each request by {@linkcode RequestView.reset}; the port and the source
 * labels are only worked out when a rule asks for them (few do).
 */
export class RequestView implements MatchRequest {
  method = "";
  /** Path without the query string. */
  path = "/";
  /** Query string without `?` ("" when none). */
  query = "";
  /** `Host` / `:authority` as received (absolute-form target's authority when present). */
  authority = "";
  readonly headers: HeadHeaders = new HeadHeaders();
  #sourceLabels: Readonly<Record<string, string>> | undefined = undefined;
  #labelsOf: (() => Readonly<Record<string, string>>) | undefined = undefined;
  #port = -1;

  /**
   * Points the view at a new request; `target` is the origin-form path with its query.
   * `sourceLabels` is a value, or a function computing it on first use.
   */
  reset(
    head: HeadLines,
    method: string,
    target: string,
    authority: string,
    sourceLabels:
      | Readonly<Record<string, string>>
      | (() => Readonly<Record<string, string>>)
      | undefined,
  ): void {
    this.headers.head = head;
    this.method = method;
    const q = target.indexOf("?");
    this.path = q < 0 ? target : target.slice(0, q);
    this.query = q < 0 ? "" : target.slice(q + 1);
    this.authority = authority;
    this.#port = -1;
    if (typeof sourceLabels === "function") {
      this.#labelsOf = sourceLabels;
      this.#sourceLabels = undefined;
    } else {
      this.#labelsOf = undefined;
      this.#sourceLabels = sourceLabels;
    }
  }

  /** Labels of the calling workload (see `localSourceLabels` in router.ts). */
  get sourceLabels(): Readonly<Record<string, string>> | undefined {
    if (this.#labelsOf !== undefined) {
      this.#sourceLabels = this.#labelsOf();
      this.#labelsOf = undefined;
    }
    return this.#sourceLabels;
  }

  /** Port the request is addressed to (from the authority; 80 when none). */
  get port(): number {
    if (this.#port < 0) this.#port = authorityPort(this.authority);
    return this.#port;
  }
}

/** The port of an authority (`host:port`, `[v6]:port`), 80 when it has none. */
export function authorityPort(authority: string): number {
  const colon = authority.lastIndexOf(":");
  if (colon < 0 || authority.indexOf("]", colon) >= 0) return 80;
  const port = Number(authority.slice(colon + 1));
  return Number.isInteger(port) && port > 0 && port < 65536 ? port : 80;
}
