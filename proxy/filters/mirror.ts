/**
 * @module
 * Request mirroring (Istio `mirror` + `mirrorPercentage`, Envoy `request_mirror_policies`):
 * a copy of the request goes to the mirror cluster, fire and forget. The copy's authority gets
 * Envoy's `-shadow` suffix on the host (`reviews:9080` -> `reviews-shadow:9080`) so the mirror
 * can tell shadow traffic apart. The mirror never affects the response: its connection is its
 * own (not the pool's), its answer is read and discarded, and its failures are only counted.
 *
 * Bodies: only requests without a body or with a small body the proxy already holds are
 * mirrored (the proxy streams larger bodies to the primary upstream without buffering them);
 * the rest are skipped and counted as such.
 */
import { type Head, headerName, headerValue, Kind } from "../head.ts";
import { keepRequestLine } from "../head_writer.ts";
import { percentHit } from "./fault.ts";
import { dropsLine, type HeaderPlan } from "./headers.ts";

/** Largest request body that is copied to a mirror. */
export const MIRROR_MAX_BODY_BYTES = 16 * 1024;

/** True when this request is mirrored; `random` is in [0, 1). */
export function shouldMirror(percentage: number, random: number): boolean {
  return percentage >= 100 || percentHit(percentage, random);
}

/** Envoy's shadow host: `-shadow` appended to the host, before any port. */
export function shadowAuthority(authority: string): string {
  const colon = authority.lastIndexOf(":");
  if (colon < 0 || authority.indexOf("]", colon) >= 0) return `${authority}-shadow`;
  return `${authority.slice(0, colon)}-shadow${authority.slice(colon)}`;
}

/** Counts of what happened to mirrored copies (for tests and metrics). */
export interface MirrorCounts {
  sent: number;
  failed: number;
  /** Not mirrored: too many copies in flight, or a body the proxy did not hold. */
  skipped: number;
}

/**
 * Sends mirror copies on short-lived connections (`connection: close`). At most
 * `maxInFlight` copies are outstanding; more are skipped rather than queued, so a slow mirror
 * cannot build up memory in the proxy. Each copy is abandoned after `timeoutMs`.
 */
export class MirrorSender {
  readonly counts: MirrorCounts = { sent: 0, failed: 0, skipped: 0 };
  readonly #inFlight = new Set<Deno.Conn>();
  readonly #pending = new Set<Promise<void>>();
  #closed = false;

  constructor(readonly maxInFlight = 64, readonly timeoutMs = 5_000) {}

  /** Copies currently outstanding. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /**
   * Fire and forget: sends `bytes` (a complete request) to `hostname:port`. Never throws.
   * `done` is called once when the copy ends (also when it is skipped), with whether the
   * mirror answered below 500 and how long it took, so the caller can release its pick.
   */
  send(
    hostname: string,
    port: number,
    bytes: Uint8Array,
    done?: (ok: boolean, latencyMs: number) => void,
  ): void {
    if (this.#closed || this.#pending.size >= this.maxInFlight) {
      this.counts.skipped++;
      done?.(false, 0);
      return;
    }
    const started = performance.now();
    const p = this.#send(hostname, port, bytes).then(
      () => {
        this.counts.sent++;
        done?.(true, performance.now() - started);
      },
      () => {
        this.counts.failed++;
        done?.(false, performance.now() - started);
      },
    );
    this.#pending.add(p);
    p.finally(() => this.#pending.delete(p));
  }

  async #send(hostname: string, port: number, bytes: Uint8Array): Promise<void> {
    const conn = await Deno.connect({ hostname, port });
    if (this.#closed) {
      conn.close();
      throw new Error("mirror closed");
    }
    this.#inFlight.add(conn);
    const timer = setTimeout(() => closeQuietly(conn), this.timeoutMs);
    try {
      let off = 0;
      while (off < bytes.length) off += await conn.write(bytes.subarray(off));
      // Read the answer to completion (the copy said connection: close) and discard it.
      const buf = new Uint8Array(16 * 1024);
      let status = 0;
      let first = true;
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        if (first && n >= 12) status = (buf[9] - 48) * 100 + (buf[10] - 48) * 10 + buf[11] - 48;
        first = false;
      }
      if (status === 0 || status >= 500) throw new Error(`mirror answered ${status}`);
    } finally {
      clearTimeout(timer);
      this.#inFlight.delete(conn);
      closeQuietly(conn);
    }
  }

  /** Closes every copy in flight and waits for them to settle; later sends are skipped. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const conn of this.#inFlight) closeQuietly(conn);
    await Promise.allSettled([...this.#pending]);
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

/** What a mirror copy is built from, besides the parsed request head. */
export interface MirrorRequest {
  method: string;
  /** Target sent upstream (after rewrite), origin-form. */
  target: string;
  /** Authority the primary request goes to; the copy gets its `-shadow` form. */
  authority: string;
  /** Service named in `x-weft-destination` when the mirror endpoint is another node's inbound. */
  destinationService: string | undefined;
  clientIp: string;
  /** Previous `x-forwarded-for` value ("" when none). */
  forwardedFor: string;
  requestPlan: HeaderPlan | null;
  /** Length of the body that will follow the head (0 for none). */
  bodyLength: number;
}

/**
 * The head of a mirror copy of the request in `head`: its end-to-end headers (after the
 * route's request edits), the shadow authority and `connection: close`. Must be called before
 * the reader buffer that `head` points into is reused; the body follows with
 * {@linkcode withBody}.
 */
export function mirrorHeadText(head: Head, m: MirrorRequest): string {
  let text = `${m.method} ${m.target} HTTP/1.1\r\nhost: ${shadowAuthority(m.authority)}\r\n`;
  for (let i = 0; i < head.count; i++) {
    if (head.kind[i] === Kind.Host || !keepRequestLine(head, i)) continue;
    if (m.requestPlan !== null && dropsLine(m.requestPlan, head, i)) continue;
    text += `${headerName(head, i)}: ${headerValue(head, i)}\r\n`;
  }
  if (m.requestPlan !== null) text += m.requestPlan.appendText;
  text += m.forwardedFor === ""
    ? `x-forwarded-for: ${m.clientIp}\r\n`
    : `x-forwarded-for: ${m.forwardedFor}, ${m.clientIp}\r\n`;
  if (m.destinationService !== undefined) text += `x-weft-destination: ${m.destinationService}\r\n`;
  return text + `content-length: ${m.bodyLength}\r\nconnection: close\r\n\r\n`;
}

/** A mirror head and its body as one byte array (the body is copied). */
export function withBody(headText: string, body: Uint8Array | null): Uint8Array {
  const headBytes = new TextEncoder().encode(headText);
  if (!body || body.length === 0) return headBytes;
  const out = new Uint8Array(headBytes.length + body.length);
  out.set(headBytes);
  out.set(body, headBytes.length);
  return out;
}
