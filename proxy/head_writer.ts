/**
 * @module
 * Outgoing HTTP/1.1 heads as bytes: the writer the session and the endpoint build heads into,
 * and which lines of a parsed head (head.ts) go through. Lines are copied as raw byte runs
 * from the read buffer; what the proxy adds is written piece by piece, never as a string
 * built for the whole head.
 */
import { type Head, headerName, Kind } from "./head.ts";

/** Writes bytes for an outgoing head; falls back to a growing copy when `out` is too small. */
export class HeadWriter {
  bytes: Uint8Array;
  length = 0;
  readonly #encoder = new TextEncoder();

  constructor(readonly fixed: Uint8Array) {
    this.bytes = fixed;
  }

  reset(): void {
    this.bytes = this.fixed;
    this.length = 0;
  }

  #ensure(n: number): void {
    if (this.length + n <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.length + n));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }

  copy(src: Uint8Array, from: number, to: number): void {
    const n = to - from;
    this.#ensure(n);
    const out = this.bytes;
    let o = this.length;
    if (n < 64) { for (let i = from; i < to; i++) out[o++] = src[i]; }
    else out.set(src.subarray(from, to), o);
    this.length += n;
  }

  crlf(): void {
    this.#ensure(2);
    this.bytes[this.length++] = 13;
    this.bytes[this.length++] = 10;
  }

  ascii(s: string): void {
    const n = s.length;
    this.#ensure(n * 3);
    const out = this.bytes;
    let o = this.length;
    // Short ASCII (what the proxy adds to heads) is copied in JS: TextEncoder.encodeInto is a
    // runtime call plus a view allocation. Anything else goes through the encoder.
    if (n <= 256) {
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        out[o++] = c;
      }
      if (i === n) {
        this.length = o;
        return;
      }
    }
    this.length += this.#encoder.encodeInto(s, out.subarray(this.length)).written;
  }

  /** A non-negative integer in decimal, without building its string. */
  decimal(n: number): void {
    if (n < 10) {
      this.#ensure(1);
      this.bytes[this.length++] = 48 + n;
      return;
    }
    let digits = 1;
    for (let m = n; m >= 10; m = Math.floor(m / 10)) digits++;
    this.#ensure(digits);
    const out = this.bytes;
    for (let o = this.length + digits - 1, m = n; o >= this.length; o--, m = Math.floor(m / 10)) {
      out[o] = 48 + (m % 10);
    }
    this.length += digits;
  }

  /** A 24-bit integer as six zero-padded hex digits. */
  hex24(n: number): void {
    this.#ensure(6);
    const out = this.bytes;
    for (let o = this.length + 5, m = n; o >= this.length; o--, m >>>= 4) {
      const d = m & 15;
      out[o] = d < 10 ? 48 + d : 87 + d;
    }
    this.length += 6;
  }

  // Two cached views: a proxy writes a request head and then a response head with one
  // writer, and each usually repeats its length from one message to the next.
  #view: Uint8Array = new Uint8Array(0);
  #viewOf: Uint8Array | null = null;
  #otherView: Uint8Array = new Uint8Array(0);
  #otherViewOf: Uint8Array | null = null;

  /** The bytes written; the view is reused while the length repeats (same-shaped messages). */
  view(): Uint8Array {
    const bytes = this.bytes, length = this.length;
    if (this.#viewOf === bytes && this.#view.length === length) return this.#view;
    const other = this.#otherView;
    const next = this.#otherViewOf === bytes && other.length === length
      ? other
      : bytes.subarray(0, length);
    this.#otherView = this.#view;
    this.#otherViewOf = this.#viewOf;
    this.#viewOf = bytes;
    return (this.#view = next);
  }
}

function listedInConnection(head: Head, i: number): boolean {
  return head.connectionTokens !== null && head.connectionTokens.includes(headerName(head, i));
}

/** Request lines forwarded upstream: end-to-end ones, minus those rewritten by the proxy. */
export function keepRequestLine(head: Head, i: number): boolean {
  switch (head.kind[i]) {
    case Kind.Other:
      return !listedInConnection(head, i);
    case Kind.Host:
      return !head.replaceHost;
    case Kind.XForwardedProto:
    case Kind.XRequestId:
      return true;
    default:
      // Hop-by-hop (an upgrade re-emits Connection and Upgrade), framing (re-emitted),
      // x-forwarded-for (rewritten), x-weft-destination.
      return false;
  }
}

/** Response lines forwarded to the client: all but hop-by-hop and framing ones. */
export function keepResponseLine(head: Head, i: number): boolean {
  switch (head.kind[i]) {
    case Kind.Drop:
    case Kind.Upgrade:
    case Kind.ContentLength:
    case Kind.TransferEncoding:
    case Kind.Connection:
      return false;
    case Kind.Other:
      return !listedInConnection(head, i);
    default:
      return true;
  }
}

/**
 * Copies the header lines `keep` accepts, as contiguous raw runs when the head uses CRLF
 * throughout (one copy in the usual case) or line by line, normalised to CRLF, otherwise.
 */
export function copyLines(
  head: Head,
  w: HeadWriter,
  keep: (head: Head, i: number) => boolean,
): void {
  const { buf, lineStart, lineEnd } = head;
  const n = head.count;
  if (head.bareLf) {
    for (let i = 0; i < n; i++) {
      if (keep(head, i)) {
        w.copy(buf, lineStart[i], lineEnd[i]);
        w.crlf();
      }
    }
    return;
  }
  let runStart = -1;
  for (let i = 0; i < n; i++) {
    if (keep(head, i)) {
      if (runStart < 0) runStart = lineStart[i];
    } else if (runStart >= 0) {
      w.copy(buf, runStart, lineStart[i]);
      runStart = -1;
    }
  }
  if (runStart >= 0) w.copy(buf, runStart, lineEnd[n - 1] + 2);
}
