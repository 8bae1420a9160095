/**
 * @module
 * HTTP/1.1 wire codec used by the proxy on both sides: a buffered connection reader, message
 * framing (RFC 9112 section 6), a streaming chunked-body scanner and the byte pumps that move
 * bodies between sockets with a fixed buffer. Heads are parsed and rewritten in head.ts.
 *
 * Why hand-rolled: Deno's `fetch` and `node:http` clients cost about 10x the server side (see
 * PERF.md). A proxy only needs the head parsed; bodies are passed through as bytes (chunked
 * framing is forwarded verbatim and only scanned to find where the message ends), so memory
 * stays bounded by one buffer per connection whatever the body size.
 */
import type { StreamConn } from "./io/net.ts";
import { BufferPool } from "./buffers.ts";

/**
 * Largest request or response head accepted (Envoy's default max_request_headers_kb is 60); a
 * larger request head is answered 431.
 */
export const maxHeadBytes = 64 * 1024;

/**
 * Longest request-target accepted; a longer one is answered 414 (nginx's default
 * large_client_header_buffers is 8k, and browsers and servers commonly cap URLs near it).
 */
export const maxTargetBytes = 8 * 1024;

/** Most header lines in one head (Envoy's default max_headers_count); over it, 431. */
export const maxHeaderCount = 100;

/** Size of the per-connection read buffer; one read moves at most this much of a body. */
export const readBufferBytes = 64 * 1024;

/**
 * Read buffers of closed connections, kept for the next ones (see buffers.ts): 64 of them, at
 * most 4 MiB idle, cover the connections that open and close within one burst.
 */
export const readBufferPool: BufferPool = new BufferPool(readBufferBytes, 64);
const released = new Uint8Array(0);

/**
 * Size of the buffer an idle connection's next read goes into while its read buffer is back in
 * the pool ({@linkcode ConnReader.park}): a typical request head fits, so it costs one copy of
 * the head and no extra read; a longer head moves to a read buffer when it outgrows this.
 */
export const idleReadBytes = 2 * 1024;

/**
 * A protocol violation by the peer; the message is safe to show. `status` is what a request
 * failing this way is answered with: 400, 414 (request-target too long) or 431 (head too
 * large, too many header lines); local_reply.ts names the replies.
 */
export class ProtocolError extends Error {
  override name = "ProtocolError";
  constructor(message: string, readonly status: 400 | 414 | 431 = 400) {
    super(message);
  }
}

/**
 * The error for a head that outgrew {@linkcode maxHeadBytes} in `buf[start, end)`: 414 when
 * its first line alone is longer than a request-target may be, else 431.
 */
function headTooLarge(buf: Uint8Array, start: number, end: number): ProtocolError {
  let lf = start;
  while (lf < end && buf[lf] !== 10) lf++;
  if (lf - start > maxTargetBytes) {
    return new ProtocolError(`request-target: longer than ${maxTargetBytes} bytes`, 414);
  }
  return new ProtocolError(`head: larger than ${maxHeadBytes} bytes`, 431);
}

/** Which side of a pump failed: "src" (read) or "dst" (write). */
export class PipeError extends Error {
  override name = "PipeError";
  constructor(readonly side: "src" | "dst", readonly reason: "eof" | "error", cause?: unknown) {
    super(`${side} ${reason}`, { cause });
  }
}

export const encoder = new TextEncoder();

/** Told when a {@linkcode ConnReader.fill} starts and ends (the request body timeout). */
export interface ReadWatch {
  reading(): void;
  read(): void;
}

/**
 * A socket with a read buffer. `buf[start, end)` holds bytes read but not consumed yet; a pump
 * or parser advances `start`.
 */
export class ConnReader {
  buf: Uint8Array;
  start = 0;
  end = 0;
  /** Told about every {@linkcode fill} (not the head reads), when set. */
  watch: ReadWatch | null = null;
  /** The small buffer of a parked reader (kept once made), or null. */
  #idle: Uint8Array | null = null;
  /** True while `buf` is the small idle buffer instead of a pooled read buffer. */
  parked = false;

  constructor(readonly conn: StreamConn, size = readBufferBytes) {
    this.buf = size === readBufferBytes ? readBufferPool.take() : new Uint8Array(size);
  }

  /**
   * Gives the buffer back for another connection's reader. Only once no read into it is
   * pending and nothing will use this reader again; it is left empty.
   */
  release(): void {
    if (!this.parked) readBufferPool.give(this.buf as Uint8Array<ArrayBuffer>);
    this.parked = false;
    this.buf = released;
    this.start = this.end = 0;
  }

  /**
   * While a connection waits for its next request: gives the read buffer back to the pool and
   * reads into a small one until bytes come ({@linkcode unpark}). Only with nothing buffered
   * and no read pending into the buffer; a reader that is parked or released stays as it is.
   */
  park(): void {
    if (this.parked || this.buf.length !== readBufferBytes || this.end !== this.start) return;
    readBufferPool.give(this.buf as Uint8Array<ArrayBuffer>);
    this.buf = this.#idle ??= new Uint8Array(idleReadBytes);
    this.parked = true;
    this.start = this.end = 0;
  }

  /**
   * Takes a read buffer from the pool again, with the bytes read into the small one moved to its
   * start; returns by how much indexes into the buffered bytes moved (0 when not parked).
   */
  unpark(): number {
    if (!this.parked) return 0;
    const buf = readBufferPool.take();
    const moved = this.start;
    const n = this.end - moved;
    const small = this.buf;
    // A head is a few hundred bytes: a loop spares the view `set(subarray(...))` allocates.
    for (let i = 0; i < n; i++) buf[i] = small[moved + i];
    this.buf = buf;
    this.parked = false;
    this.start = 0;
    this.end = n;
    return moved;
  }

  get buffered(): number {
    return this.end - this.start;
  }

  /** Reads once more from the socket. Returns false at end of stream. */
  fill(): Promise<boolean> {
    if (this.parked) this.unpark();
    this.#makeRoom();
    const end = this.end;
    const watch = this.watch;
    if (watch !== null) watch.reading();
    // Reading into the whole buffer (the common case) spares a view allocation.
    return this.conn.read(end === 0 ? this.buf : this.buf.subarray(end)).then((n) => {
      if (watch !== null) watch.read();
      if (n === null) return false;
      this.end += n;
      return true;
    });
  }

  /** Compacts or rejects so that at least one byte can be read after `end`. */
  #makeRoom(): void {
    if (this.start === this.end) {
      this.start = 0;
      this.end = 0;
    } else if (this.end === this.buf.length) {
      if (this.start > 0) {
        this.buf.copyWithin(0, this.start, this.end);
        this.end -= this.start;
        this.start = 0;
      } else {
        throw headTooLarge(this.buf, this.start, this.end);
      }
    }
  }

  /**
   * Reads until a whole head (through the empty line) is buffered at `start` and returns the
   * index just past it; `start` is left at the head for the parser. Returns -1 on a clean end
   * of stream before any byte of a head. (The proxy's request path runs the same loop inline
   * with {@linkcode headEnd}, {@linkcode space} and {@linkcode received}: no async frame.)
   */
  async readHeadEnd(): Promise<number> {
    let end = this.headEnd();
    while (end < 0) {
      if (!this.received(await this.conn.read(this.space()))) return -1;
      end = this.headEnd();
    }
    return end;
  }

  #headReads = 0;
  /**
   * Bytes of the head being read (from `start`) already searched for its end. Searching resumes
   * near there, so a head that trickles in a byte at a time costs linear, not quadratic, work.
   */
  #scanned = 0;

  /**
   * Index just past a whole head buffered at `start`, or -1 when more bytes are needed. Throws
   * {@linkcode ProtocolError} when the buffered bytes can no longer become a head.
   */
  headEnd(): number {
    // The blank line's pattern ("\n\n" or "\n\r\n") may straddle the last search's end.
    const scanned = this.#scanned;
    const end = findHeadEnd(this.buf, this.start + (scanned > 2 ? scanned - 2 : 0), this.end);
    if (end >= 0) {
      this.#headReads = 0;
      this.#scanned = 0;
      return end;
    }
    this.#scanned = this.end - this.start;
    if (this.buffered >= maxHeadBytes) throw headTooLarge(this.buf, this.start, this.end);
    if (++this.#headReads > 100_000) throw new ProtocolError("message head arrives too slowly");
    return -1;
  }

  /** Where the next read of a head goes (compacts the buffer first when needed). */
  space(): Uint8Array {
    // A head that did not fit in one read moves to a read buffer (it may grow to maxHeadBytes).
    if (this.parked && this.end > this.start) this.unpark();
    this.#makeRoom();
    // Reading into the whole buffer (the common case) spares a view allocation.
    return this.end === 0 ? this.buf : this.buf.subarray(this.end);
  }

  /**
   * Takes the result of a read into {@linkcode space}: true when bytes arrived, false at a
   * clean end of stream before any byte of a head; throws at an end inside a head.
   */
  received(n: number | null): boolean {
    if (n === null) {
      if (this.buffered === 0) return false;
      throw new PipeError("src", "eof");
    }
    this.end += n;
    return true;
  }
}

/**
 * Index just past the blank line that ends a head in `buf[from, to)`, or -1. A byte loop:
 * `Uint8Array#indexOf` is a C++ builtin, and entering it once per line cost more than scanning
 * the line (in a profile, its calls from here and from `parseHead` were 2% of the proxy's CPU).
 */
export function findHeadEnd(buf: Uint8Array, from: number, to: number): number {
  for (let lf = from; lf < to; lf++) {
    if (buf[lf] !== 10) continue;
    if (lf + 1 < to && buf[lf + 1] === 10) return lf + 2;
    if (lf + 2 < to && buf[lf + 1] === 13 && buf[lf + 2] === 10) return lf + 3;
    if (lf + 2 >= to) return -1;
  }
  return -1;
}

/** How a message body is delimited. */
export const enum Framing {
  None = 0,
  Length = 1,
  Chunked = 2,
  /** Response only: the body runs until the upstream closes the connection. */
  UntilClose = 3,
}

/**
 * Hop-by-hop headers (RFC 9110 7.6.1 plus the usual proxy ones) that a proxy never forwards,
 * as names; head.ts classifies the same list on bytes.
 */
export const hopByHopHeaders: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "proxy-authorization",
  "proxy-authenticate",
  // Re-emitted by the proxy from the parsed framing.
  "content-length",
]);

const enum ChunkState {
  Size,
  Extension,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  Trailer,
  TrailerLf,
}

/** `what`: expected `expected`, got byte `c` (shown in hex). */
function chunkError(what: string, expected: string, c: number): ProtocolError {
  return new ProtocolError(
    `${what}: expected ${expected}, got 0x${c.toString(16).padStart(2, "0")}`,
  );
}

/** A control character other than HTAB (or DEL): never valid in a chunk line or a trailer. */
function isControl(c: number): boolean {
  return (c < 32 && c !== 9) || c === 127;
}

/**
 * Finds where a chunked body ends without decoding it: bytes pass through verbatim. Strict
 * about the framing bytes so that a malformed body cannot smuggle a second message: lines end
 * in CR LF (no bare LF or CR), and no control character passes in an extension or a trailer.
 */
export class ChunkedScanner {
  #state = ChunkState.Size;
  #size = 0;
  #digits = 0;
  #remaining = 0;
  #lineLength = 0;
  done = false;

  reset(): void {
    this.#state = ChunkState.Size;
    this.#size = 0;
    this.#digits = 0;
    this.#remaining = 0;
    this.#lineLength = 0;
    this.done = false;
  }

  /** Scans `buf[from, to)`; returns the index where the message ends, or `to` if not yet. */
  scan(buf: Uint8Array, from: number, to: number): number {
    let i = from;
    while (i < to) {
      switch (this.#state) {
        case ChunkState.Data: {
          const take = Math.min(this.#remaining, to - i);
          i += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.#state = ChunkState.DataCr;
          continue;
        }
        case ChunkState.Size: {
          const c = buf[i++];
          const d = hexValue(c);
          if (d >= 0) {
            if (++this.#digits > 12) {
              throw new ProtocolError("chunk size: expected at most 12 hex digits, got more");
            }
            this.#size = this.#size * 16 + d;
          } else if (this.#digits === 0) throw chunkError("chunk size", "a hex digit", c);
          else if (c === 59 /* ; */ || c === 32 || c === 9) this.#state = ChunkState.Extension;
          else if (c === 13) this.#state = ChunkState.SizeLf;
          else throw chunkError("chunk size", "a hex digit, ';' or CR LF", c);
          continue;
        }
        case ChunkState.Extension: {
          const c = buf[i++];
          if (c === 13) this.#state = ChunkState.SizeLf;
          else if (isControl(c)) throw chunkError("chunk extension", "no control character", c);
          continue;
        }
        case ChunkState.SizeLf: {
          const c = buf[i++];
          if (c !== 10) throw chunkError("chunk size line", "LF after CR", c);
          if (this.#size === 0) {
            this.#state = ChunkState.Trailer;
            this.#lineLength = 0;
          } else {
            this.#remaining = this.#size;
            this.#state = ChunkState.Data;
          }
          this.#size = 0;
          this.#digits = 0;
          continue;
        }
        case ChunkState.DataCr: {
          const c = buf[i++];
          if (c !== 13) throw chunkError("chunk data", "CR LF after the chunk", c);
          this.#state = ChunkState.DataLf;
          continue;
        }
        case ChunkState.DataLf: {
          const c = buf[i++];
          if (c !== 10) throw chunkError("chunk data", "CR LF after the chunk", c);
          this.#state = ChunkState.Size;
          continue;
        }
        case ChunkState.Trailer: {
          const c = buf[i++];
          if (c === 13) this.#state = ChunkState.TrailerLf;
          else if (isControl(c)) throw chunkError("trailer", "no control character", c);
          else if (++this.#lineLength > maxHeadBytes) {
            throw new ProtocolError(`trailer: longer than ${maxHeadBytes} bytes`);
          }
          continue;
        }
        case ChunkState.TrailerLf: {
          const c = buf[i++];
          if (c !== 10) throw chunkError("trailer", "LF after CR", c);
          if (this.#lineLength === 0) {
            this.done = true;
            return i;
          }
          this.#lineLength = 0;
          this.#state = ChunkState.Trailer;
          continue;
        }
      }
    }
    return i;
  }
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  if (l >= 97 && l <= 102) return l - 87;
  return -1;
}

/** Writes all of `bytes`; a failure is a {@linkcode PipeError} on the "dst" side. */
export async function writeAll(conn: StreamConn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  try {
    while (off < bytes.length) {
      off += await conn.write(off === 0 ? bytes : bytes.subarray(off));
    }
  } catch (err) {
    throw new PipeError("dst", "error", err);
  }
}

async function fillOrFail(src: ConnReader): Promise<void> {
  let more: boolean;
  try {
    more = await src.fill();
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    throw new PipeError("src", "error", err);
  }
  if (!more) throw new PipeError("src", "eof");
}

/**
 * Moves exactly `length` body bytes from `src` (its buffer first) to `dst`. Returns when done;
 * the buffer keeps whatever follows the body (a pipelined next message).
 */
export async function pumpLength(src: ConnReader, dst: StreamConn, length: number): Promise<void> {
  let left = length;
  while (left > 0) {
    if (src.buffered === 0) await fillOrFail(src);
    const take = Math.min(left, src.buffered);
    await writeAll(dst, src.buf.subarray(src.start, src.start + take));
    src.start += take;
    left -= take;
  }
}

/** Moves a chunked body verbatim (framing, extensions and trailers included) from `src` to `dst`. */
export async function pumpChunked(
  src: ConnReader,
  dst: StreamConn,
  scanner: ChunkedScanner,
): Promise<void> {
  scanner.reset();
  for (;;) {
    if (src.buffered === 0) await fillOrFail(src);
    const stop = scanner.scan(src.buf, src.start, src.end);
    await writeAll(dst, src.buf.subarray(src.start, stop));
    src.start = stop;
    if (scanner.done) return;
  }
}

/** Moves bytes from `src` to `dst` until `src` reaches end of stream. */
export async function pumpUntilClose(src: ConnReader, dst: StreamConn): Promise<void> {
  for (;;) {
    if (src.buffered > 0) {
      await writeAll(dst, src.buf.subarray(src.start, src.end));
      src.start = src.end;
    }
    let more: boolean;
    try {
      more = await src.fill();
    } catch (err) {
      throw new PipeError("src", "error", err);
    }
    if (!more) return;
  }
}
