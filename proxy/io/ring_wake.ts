/**
 * @module
 * The `uring` mode's idle wait without a second thread. Waiting for the epoll set on a runtime
 * worker thread (the `epoll` mode's way) costs two wake-ups in a row when traffic comes back:
 * the kernel wakes the worker thread, which then wakes the JS thread's runtime. Here the ring
 * watches the epoll set instead and, once it is readable, sends one byte on a loopback TCP
 * connection whose other end is an ordinary Deno socket: the JS thread sleeps in its runtime's
 * own wait, and the kernel wakes it directly (see {@linkcode SubmissionRing.watch}).
 */
import {
  AF_INET,
  IPPROTO_TCP,
  type Libc,
  localPort,
  setIntOption,
  SOCK_CLOEXEC,
  SOCK_STREAM,
  TCP_NODELAY,
  writeSockaddrIn,
} from "./libc.ts";
import type { SubmissionRing } from "./uring.ts";

/** One loopback connection per reactor run: the ring's watch writes to it, the runtime reads. */
export class RingWaker {
  readonly #byte = new Uint8Array([1]);
  readonly #sink = new Uint8Array(64);

  private constructor(
    readonly ring: SubmissionRing,
    readonly c: Libc,
    /** Our end of the connection: the ring's linked send writes here. */
    readonly fd: number,
    /** The runtime's end, read while idle. */
    readonly conn: Deno.Conn,
  ) {}

  /**
   * Connects a raw socket to a Deno listener on an ephemeral loopback port. Null where that is
   * not possible (no net permission, or another process took the connection first): the
   * caller then waits on a worker thread.
   */
  static async open(ring: SubmissionRing, c: Libc): Promise<RingWaker | null> {
    let listener: Deno.TcpListener;
    try {
      listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    } catch {
      return null;
    }
    const s = c.sym;
    const fd = s.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    let conn: Deno.Conn | null = null;
    let kept = false;
    try {
      if (fd < 0) return null;
      const address = new Uint8Array(16);
      writeSockaddrIn(address, [127, 0, 0, 1], listener.addr.port);
      const accepted = listener.accept();
      // A loopback connect completes in the call: the kernel queues it on the listener.
      if (s.connect(fd, address, 16) < 0) {
        listener.close();
        await accepted.catch(() => {});
        return null;
      }
      // One-byte sends must not wait for an acknowledgement (Nagle).
      setIntOption(c, fd, IPPROTO_TCP, TCP_NODELAY, 1);
      conn = await accepted;
      if ((conn.remoteAddr as Deno.NetAddr).port !== localPort(c, fd)) return null;
      kept = true;
      return new RingWaker(ring, c, fd, conn);
    } catch {
      return null;
    } finally {
      try {
        listener.close();
      } catch {
        // Already closed.
      }
      if (!kept) {
        conn?.close();
        if (fd >= 0) s.close(fd);
      }
    }
  }

  /**
   * Resolves once `epfd` has events: true, or false when the connection failed (the caller
   * closes this waker and waits on a worker thread from then on).
   */
  async wait(epfd: number): Promise<boolean> {
    this.ring.watch(epfd, this.fd, this.#byte);
    try {
      if ((await this.conn.read(this.#sink)) !== null) return true;
    } catch {
      // The connection failed: the watch may still be armed.
    }
    this.ring.cancelWatch();
    return false;
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
    this.c.sym.close(this.fd);
  }
}
