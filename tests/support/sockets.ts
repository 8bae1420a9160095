/**
 * @module
 * Socket helpers shared by tests: a loopback port nothing listens on, whether the host has an
 * IPv6 loopback, reading until a condition holds, writing a whole buffer over partial writes,
 * and waiting for a socket backend to settle. Bounded loops only.
 */

/** A loopback port that was free a moment ago (bound to port 0, read, released). */
/**
 * Whether this host has an IPv6 loopback (`::1`); some containers run without one, and the
 * tests that need it are then skipped rather than failed.
 */
export const hasIpv6Loopback: boolean = (() => {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
})();

export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

/** Reads from `conn` until `done` accepts the bytes so far, or end of stream; bounded. */
export async function readUntil(
  conn: { read(p: Uint8Array): Promise<number | null> },
  done: (all: Uint8Array) => boolean,
): Promise<Uint8Array> {
  let all = new Uint8Array(0);
  const buf = new Uint8Array(64 * 1024);
  for (let reads = 0; reads < 1000 && !done(all); reads++) {
    const n = await conn.read(buf);
    if (n === null) break;
    const next = new Uint8Array(all.length + n);
    next.set(all);
    next.set(buf.subarray(0, n), all.length);
    all = next;
  }
  return all;
}

/** Writes all of `bytes`, looping over partial writes (bounded: each write moves >= 1 byte). */
export async function writeAll(
  conn: { write(p: Uint8Array): Promise<number> },
  bytes: Uint8Array,
): Promise<void> {
  let off = 0;
  for (let zeroWrites = 0; off < bytes.length;) {
    const n = await conn.write(bytes.subarray(off));
    if (n <= 0 && ++zeroWrites > 100) throw new Error("write keeps answering 0");
    off += n;
  }
}

/** Resolves true once `network` settled (no socket open, poller stopped), false after `ms`. */
export async function settledWithin(
  network: { settled(): Promise<void> },
  ms: number,
): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const settled = await Promise.race([
    network.settled().then(() => true),
    new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
  ]);
  clearTimeout(timer);
  return settled;
}

/**
 * Stops a test server: closes its listener, waits for its accept loop, closes every open
 * connection (ignoring those already closed) and waits for their handlers.
 */
export async function closeServer(
  listener: Deno.Listener,
  acceptLoop: Promise<void>,
  conns: Iterable<Deno.Conn>,
  tasks: Iterable<Promise<void>>,
): Promise<void> {
  listener.close();
  await acceptLoop;
  for (const c of conns) {
    try {
      c.close();
    } catch {
      // Already closed.
    }
  }
  await Promise.all(tasks);
}
