/**
 * @module
 * A loopback TCP echo server and client helpers for the raw-TCP tests.
 */
import { closeServer } from "./sockets.ts";

/** A loopback TCP server that writes `tag` (if any) first, then echoes until the client half-closes. */
export function startEcho(tag = "") {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  let accepted = 0;
  const loop = (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return;
      }
      accepted++;
      conns.add(conn);
      const task = (async () => {
        try {
          if (tag) await conn.write(new TextEncoder().encode(tag));
          const buf = new Uint8Array(64 * 1024);
          for (;;) {
            const n = await conn.read(buf);
            if (n === null) break;
            let off = 0;
            while (off < n) off += await conn.write(buf.subarray(off, n));
          }
          await conn.closeWrite();
        } catch {
          // Peer gone.
        } finally {
          conns.delete(conn);
          try {
            conn.close();
          } catch {
            // Already closed.
          }
        }
      })();
      tasks.add(task);
      task.finally(() => tasks.delete(task));
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    get accepted() {
      return accepted;
    },
    close: () => closeServer(listener, loop, conns, tasks),
  };
}

/** Sends `payload`, half-closes, and reads until the server closes. */
export async function roundTrip(port: number, payload: Uint8Array): Promise<Uint8Array> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const reading = readAll(conn);
    let off = 0;
    while (off < payload.length) off += await conn.write(payload.subarray(off));
    await conn.closeWrite();
    return await reading;
  } finally {
    conn.close();
  }
}

export async function readAll(conn: Deno.Conn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buf = new Uint8Array(64 * 1024);
  for (;;) {
    let n: number | null;
    try {
      n = await conn.read(buf);
    } catch {
      break; // reset: what arrived so far is the answer
    }
    if (n === null) break;
    chunks.push(buf.slice(0, n));
    total += n;
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
