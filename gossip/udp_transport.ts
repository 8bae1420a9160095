/**
 * @module
 * Real sockets: UDP datagrams and TCP request/response on the same `HOST:PORT`.
 *
 * UDP uses `node:dgram`, because `Deno.listenDatagram` still needs `--unstable-net` in
 * Deno 2.9. TCP uses `Deno.listen`/`Deno.connect`; each request is one connection carrying a
 * 4-byte big-endian length and the payload, answered the same way.
 */
import dgram from "node:dgram";
import { formatHostPort, type HostPort, parseHostPort } from "../lib/address.ts";
import { maxStreamBytes, type RequestHandler, type Transport } from "./transport.ts";

/** Binds UDP and TCP on `bind` (port 0: a free port, the same for both). */
export async function listenUdpTransport(bind: HostPort): Promise<UdpTransport> {
  // With port 0 the UDP port the kernel picks may be taken for TCP; retry a few times.
  let lastError: unknown;
  for (let attempt = 0; attempt < 20; attempt++) {
    const socket = dgram.createSocket(bind.hostname.includes(":") ? "udp6" : "udp4");
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once("error", reject);
        socket.bind(bind.port, bind.hostname, () => {
          socket.off("error", reject);
          resolve();
        });
      });
    } catch (err) {
      socket.close();
      throw new Error(
        `gossip address ${formatHostPort(bind)}: cannot bind UDP (${errorText(err)})`,
      );
    }
    const port = socket.address().port;
    try {
      const listener = Deno.listen({ hostname: bind.hostname, port, transport: "tcp" });
      return new UdpTransport(socket, listener, { hostname: bind.hostname, port });
    } catch (err) {
      socket.close();
      lastError = err;
      if (bind.port !== 0) break;
    }
  }
  throw new Error(
    `gossip address ${formatHostPort(bind)}: cannot bind TCP (${errorText(lastError)})`,
  );
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function readExactly(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    const got = await conn.read(out.subarray(off));
    if (got === null) throw new Error("connection closed mid-message");
    off += got;
  }
  return out;
}

async function readFrame(conn: Deno.Conn): Promise<Uint8Array> {
  const head = await readExactly(conn, 4);
  const len = new DataView(head.buffer).getUint32(0);
  if (len > maxStreamBytes) throw new Error(`stream message of ${len} bytes is too large`);
  return await readExactly(conn, len);
}

async function writeFrame(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  const frame = new Uint8Array(4 + bytes.length);
  new DataView(frame.buffer).setUint32(0, bytes.length);
  frame.set(bytes, 4);
  let off = 0;
  while (off < frame.length) off += await conn.write(frame.subarray(off));
}

/** UDP + TCP transport; create with {@linkcode listenUdpTransport}. */
export class UdpTransport implements Transport {
  #packetHandler: (from: string, bytes: Uint8Array) => void = () => {};
  #requestHandler: RequestHandler | undefined;
  #closed = false;
  readonly #conns = new Set<Deno.Conn>();
  readonly #serving = new Set<Promise<void>>();
  readonly #acceptLoop: Promise<void>;

  constructor(
    private readonly socket: dgram.Socket,
    private readonly listener: Deno.Listener,
    private readonly addr: HostPort,
  ) {
    socket.on("message", (msg: Uint8Array, rinfo: { address: string; port: number }) => {
      const from = formatHostPort({ hostname: rinfo.address, port: rinfo.port });
      try {
        this.#packetHandler(from, new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength));
      } catch {
        // The handler counts its own failures; a throw must never reach the socket.
      }
    });
    socket.on("error", () => {});
    this.#acceptLoop = this.#accept();
  }

  localAddr(): HostPort {
    return { ...this.addr };
  }

  sendPacket(to: string, bytes: Uint8Array): void {
    if (this.#closed) return;
    const a = parseHostPort(to);
    if (typeof a === "string") return;
    try {
      this.socket.send(bytes, a.port, a.hostname.replace(/^\[|\]$/g, ""), () => {});
    } catch {
      // Best effort: an unreachable address is the same as a lost packet.
    }
  }

  onPacket(handler: (from: string, bytes: Uint8Array) => void): void {
    this.#packetHandler = handler;
  }

  onRequest(handler: RequestHandler): void {
    this.#requestHandler = handler;
  }

  async request(to: string, bytes: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const a = parseHostPort(to);
    if (typeof a === "string") throw new Error(`bad address ${to}: ${a}`);
    let conn: Deno.Conn | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        try {
          conn?.close();
        } catch { /* already closed */ }
        reject(new Error(`request to ${to} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
    });
    const exchange = (async () => {
      conn = await Deno.connect({ hostname: a.hostname, port: a.port, transport: "tcp" });
      this.#conns.add(conn);
      try {
        await writeFrame(conn, bytes);
        return await readFrame(conn);
      } finally {
        this.#conns.delete(conn);
        try {
          conn.close();
        } catch { /* closed by the timeout */ }
      }
    })();
    try {
      return await Promise.race([exchange, timeout]);
    } finally {
      clearTimeout(timer);
      exchange.catch(() => {});
    }
  }

  async #accept(): Promise<void> {
    while (!this.#closed) {
      let conn: Deno.Conn;
      try {
        conn = await this.listener.accept();
      } catch {
        return; // listener closed
      }
      const p = this.#serve(conn);
      this.#serving.add(p);
      p.finally(() => this.#serving.delete(p));
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    this.#conns.add(conn);
    const remote = conn.remoteAddr as Deno.NetAddr;
    const timer = setTimeout(() => {
      try {
        conn.close();
      } catch { /* done */ }
    }, 10_000);
    try {
      const req = await readFrame(conn);
      const handler = this.#requestHandler;
      if (!handler) return;
      const reply = await handler(formatHostPort(remote), req);
      await writeFrame(conn, reply);
    } catch {
      // Malformed or aborted exchange: the handler already counted it; drop the connection.
    } finally {
      clearTimeout(timer);
      this.#conns.delete(conn);
      try {
        conn.close();
      } catch { /* already closed */ }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.listener.close();
    } catch { /* already closed */ }
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
    await this.#acceptLoop;
    await Promise.allSettled([...this.#serving]);
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }
}
