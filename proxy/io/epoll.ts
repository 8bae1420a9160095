/**
 * @module
 * The epoll network backend: nonblocking sockets driven by one edge-triggered epoll set, with
 * `recv`/`send`/`accept4`/`connect` as synchronous FFI calls and `epoll_wait` as the only call
 * that blocks, on a runtime worker thread, so the JS thread never does. One wait reports
 * readiness for every socket that changed, however many.
 *
 * Readiness is tracked per socket as hints (`readable`, `writable`): a call is tried when the
 * hint says so, and a would-block answer clears the hint and parks the caller until the next
 * edge. Hints may be stale (an edge reported for bytes already read); a stale hint only costs
 * one call that answers EAGAIN. Events still queued for a closed socket whose descriptor was
 * reused are dropped: each registration carries its own number in the event data.
 * A short read clears `readable` (the kernel buffer was emptied, so new bytes make a new edge)
 * unless the peer already hung up, whose edge will not come again (nginx does the same).
 *
 * In `uring` mode (a reactor with a {@linkcode SubmissionRing}) the hints and the loop are the
 * same, but a read or write whose hint says ready is queued in the ring instead of called, and
 * each round's queue is submitted with one system call (io/uring.ts says why and how). Its idle
 * wait is the ring's too: a watch of the epoll set wakes the JS thread's runtime directly, with
 * no worker thread in between (io/ring_wake.ts).
 *
 * IPv4 and IPv6 literals are handled here; host names (and IPv6 addresses with a zone) go to
 * Deno's sockets, which the proxy mixes freely since both are {@linkcode StreamConn}s.
 */
import type { HostPort } from "../../lib/mod.ts";
import {
  AF_INET,
  AF_INET6,
  EAGAIN,
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  EINPROGRESS,
  EINTR,
  EPOLL_CLOEXEC,
  EPOLL_CTL_ADD,
  EPOLLERR,
  EPOLLET,
  EPOLLHUP,
  EPOLLIN,
  EPOLLOUT,
  EPOLLRDHUP,
  IPPROTO_TCP,
  type Libc,
  loadLibc,
  localPort,
  MSG_NOSIGNAL,
  parseIp,
  setIntOption,
  SHUT_WR,
  SO_ERROR,
  SO_REUSEADDR,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  sockaddrBytes,
  sockaddrHost,
  SOL_SOCKET,
  TCP_NODELAY,
  writeSockaddr,
} from "./libc.ts";
import { denoNetwork, type Network, type StreamConn, type StreamListener } from "./net.ts";
import { RingOp, SubmissionRing } from "./uring.ts";
import { RingWaker } from "./ring_wake.ts";

/** Events reported by one wait at most; more stay queued in the kernel for the next one. */
const maxEvents = 256;
const streamEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
const hangupEvents = EPOLLRDHUP | EPOLLHUP | EPOLLERR;
/** Reads and writes that may complete synchronously per round of the poller. */
const syncBudget = 128;
/**
 * Longest the runtime's event loop waits for a turn while the proxy is busy: the bound on how
 * late a timer fires, or a Deno socket (admin API, gossip) is served, under full load. Each
 * turn costs a thread handoff and a short sleep (about 0.2 ms here), so 10 ms is about 2%.
 * (Nesting the runtime's own epoll sets into ours, to hand over exactly when they had I/O,
 * was tried and dropped: it reaches into other runtimes' kernel state, and test processes
 * with several workers then saw child-process exits go unnoticed.)
 */
const turnEveryMs = 10;
/**
 * How long an empty poll is retried before the wait is handed to a worker thread, when the
 * previous wait was short: a handoff costs about 30 us of CPU here, so spinning up to that
 * long costs no more and answers sooner. Measured at one connection: 130 -> 76 CPU-ms per
 * 1000 requests, 7k -> 13k req/s.
 */
const spinMs = 0.03;
/** A wait shorter than this marks traffic as dense (worth spinning for). */
const denseGapMs = 1;
/** Sleep of a turn's worker-thread call: long enough for the runtime to park meanwhile. */
const parkMicros = 50;
/** Microtask turns given to settled promise chains before the next poll. */
const settleTurns = 8;
/**
 * Submissions per round in `uring` mode: each lets the chains that the previous one resumed
 * queue their next reads and writes (a request's upstream write follows its client read).
 */
const submitsPerRound = 4;

/** Maps an errno to the `Deno.errors` class Deno's own sockets would throw. */
function socketError(errno: number, what: string): Error {
  const message = `${what}: errno ${errno}`;
  switch (errno) {
    case 104:
      return new Deno.errors.ConnectionReset(message);
    case 32:
      return new Deno.errors.BrokenPipe(message);
    case 111:
      return new Deno.errors.ConnectionRefused(message);
    case 103:
      return new Deno.errors.ConnectionAborted(message);
    case 110:
      return new Deno.errors.TimedOut(message);
    case 98:
      return new Deno.errors.AddrInUse(message);
    case 99:
      return new Deno.errors.AddrNotAvailable(message);
    case 13:
      return new Deno.errors.PermissionDenied(message);
    default:
      return new Error(message);
  }
}

function closedError(): Error {
  return new Deno.errors.BadResource("socket closed");
}

/** Something registered in the epoll set. */
interface Pollable {
  onEvents(events: number): void;
}

/** A socket whose ready operation was deferred to the reactor's next round. */
interface Posted {
  onPosted(): void;
}

/** One epoll set and the loop that waits on it while any socket is registered. */
class Reactor {
  readonly #epfd: number;
  readonly #wakeFd: number;
  readonly #events: Uint8Array<ArrayBuffer>;
  readonly #view: DataView;
  readonly #ctl = new Uint8Array(16);
  readonly #ctlView = new DataView(this.#ctl.buffer);
  readonly #wakeBytes = new Uint8Array(8);
  readonly #handlers: (Pollable | undefined)[] = [];
  /**
   * Registration number per fd, also stored in the event's data: an event queued for a closed
   * socket whose fd number was reused is recognised and dropped.
   */
  readonly #generations: number[] = [];
  #nextGeneration = 1;
  #count = 0;
  #loop: Promise<void> | null = null;
  /** Operations that may still complete synchronously in this round. */
  #budget = syncBudget;
  /** Idle waits done through the ring's watch (`uring` mode), not on a worker thread. */
  ringWaits = 0;
  #posted: Posted[] = [];
  #spare: Posted[] = [];
  /** When the current round began; -1 while the loop waits (the runtime runs other tasks). */
  #roundStart = -1;

  /**
   * `ring`, when given, batches reads and writes: they are queued during a round and submitted
   * together (the `uring` mode); without it each is a direct call.
   */
  constructor(readonly c: Libc, readonly ring: SubmissionRing | null = null) {
    const s = c.sym;
    this.#epfd = s.epoll_create1(EPOLL_CLOEXEC);
    if (this.#epfd < 0) throw socketError(c.errno(), "epoll_create1");
    this.#wakeFd = s.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (this.#wakeFd < 0) throw socketError(c.errno(), "eventfd");
    this.#ctlAdd(this.#wakeFd, EPOLLIN, 0);
    this.#events = new Uint8Array(maxEvents * c.epollEventSize);
    this.#view = new DataView(this.#events.buffer);
  }

  #ctlAdd(fd: number, events: number, generation: number): void {
    const v = this.#ctlView;
    v.setUint32(0, events >>> 0, true);
    v.setUint32(this.c.epollDataOffset, fd, true);
    v.setUint32(this.c.epollDataOffset + 4, generation, true);
    if (this.c.sym.epoll_ctl(this.#epfd, EPOLL_CTL_ADD, fd, this.#ctl) < 0) {
      throw socketError(this.c.errno(), "epoll_ctl");
    }
  }

  /** Registers `fd` (edge-triggered) and starts the wait loop if it was stopped. */
  add(fd: number, handler: Pollable, events = streamEvents): void {
    const generation = this.#nextGeneration;
    this.#nextGeneration = (generation + 1) >>> 0 || 1;
    this.#ctlAdd(fd, events, generation);
    if (this.#handlers[fd] === undefined) this.#count++;
    this.#handlers[fd] = handler;
    this.#generations[fd] = generation;
    this.#loop ??= this.#run();
  }

  /**
   * Whether one more read or write may complete without waiting for the next round. Sockets
   * that stay ready would otherwise keep a pump in promise continuations forever, and no
   * other connection, timer or runtime socket would get a turn.
   */
  takeBudget(): boolean {
    if (this.#budget === 0) return false;
    this.#budget--;
    return true;
  }

  /** Retries a ready socket's operation at the start of the next round. */
  post(socket: Posted): void {
    this.#posted.push(socket);
  }

  /**
   * Queues a ring operation (`uring` mode) for `socket`: its slot in the ring, or -1 when this
   * round has no room or budget left and the socket was posted to the next round instead.
   * Outside a round (a timer or a Deno socket's continuation, while the loop waits) it is
   * submitted at once: nothing else would submit it before the next epoll event.
   */
  queue(socket: Posted, fd: number, buf: Uint8Array, op: RingOp, send: boolean): number {
    const ring = this.ring!;
    if (ring.room === 0 || !this.takeBudget()) {
      this.post(socket);
      return -1;
    }
    const slot = send ? ring.send(fd, buf, op) : ring.recv(fd, buf, op);
    if (this.#roundStart < 0) ring.submit();
    return slot;
  }

  /**
   * Submits queued ring operations, letting resumed chains queue more, a bounded number of
   * times. After a submit, microtask turns are given only while the last one queued something:
   * the proxy's chains queue their next read or write one turn after their completion (counted
   * under load: never later, past warm-up), so a fixed `settleTurns` per submit would mostly
   * spin the microtask queue empty.
   */
  async #drain(ring: SubmissionRing): Promise<void> {
    for (let i = 0; i < submitsPerRound && ring.pending; i++) {
      ring.submit();
      let queued = -1;
      for (let j = 0; j < settleTurns && ring.queued !== queued; j++) {
        queued = ring.queued;
        await null;
      }
    }
  }

  /** Hands the events of an already registered `fd` to another handler. */
  replace(fd: number, handler: Pollable): void {
    this.#handlers[fd] = handler;
  }

  /** Forgets `fd`; the caller closes it, which also removes it from the epoll set. */
  remove(fd: number): void {
    if (this.#handlers[fd] === undefined) return;
    this.#handlers[fd] = undefined;
    this.#generations[fd] = 0;
    if (--this.#count === 0) this.#wake();
  }

  #wake(): void {
    const b = this.#wakeBytes;
    b.fill(0);
    b[0] = 1;
    this.c.sym.write(this.#wakeFd, b, 8n);
  }

  /** The current round's start time, or a fresh reading outside rounds (Network.now). */
  readonly now = (): number => this.#roundStart >= 0 ? this.#roundStart : performance.now();

  /** Resolves when no socket is registered and no wait is pending. */
  settled(): Promise<void> {
    return this.#loop ?? Promise.resolve();
  }

  /**
   * Waits for events and hands them out until no socket is registered. While events keep
   * coming, the set is polled synchronously (one syscall) after the handlers' promise chains
   * ran; after a short wait it is also retried for `spinMs` before giving up. An empty poll
   * then moves the wait to a runtime worker thread (in `uring` mode: to the ring's watch, see
   * io/ring_wake.ts), leaving the JS thread free
   * (its runtime serves its own sockets and timers meanwhile, and an idle node costs no CPU).
   * When busy, the runtime still gets a turn (a call made on a worker thread, during which it
   * parks and polls its own sockets and timers) at least every `turnEveryMs`.
   */
  async #run(): Promise<void> {
    const s = this.c.sym;
    const epfd = this.#epfd;
    const events = this.#events;
    const ring = this.ring;
    let failures = 0;
    let lastTurn = performance.now();
    let dense = false;
    // Opened per run, so an idle reactor holds no runtime resource.
    let waker = ring ? await RingWaker.open(ring, this.c) : null;
    try {
      while (this.#count > 0) {
        this.#budget = syncBudget;
        let roundStart = this.#roundStart = performance.now();
        const posted = this.#posted;
        if (posted.length > 0) {
          this.#posted = this.#spare;
          for (const p of posted) p.onPosted();
          posted.length = 0;
          this.#spare = posted;
          // In uring mode the posted sockets only queued their operations: the drain runs them.
          if (!ring) { for (let i = 0; i < settleTurns; i++) await null; }
        }
        if (ring?.pending) await this.#drain(ring);
        if (roundStart - lastTurn >= turnEveryMs) {
          this.#roundStart = -1;
          await s.usleep(parkMicros);
          lastTurn = roundStart = this.#roundStart = performance.now();
        }
        let n = s.epoll_poll(epfd, events, maxEvents, 0);
        if (n === 0 && this.#posted.length === 0 && !ring?.pending && dense) {
          // Traffic is dense: the next event is likely a few tens of microseconds away, less
          // than a thread handoff costs, so poll a little longer before handing off.
          const until = roundStart + spinMs;
          while (n === 0 && performance.now() < until) n = s.epoll_poll(epfd, events, maxEvents, 0);
        }
        if (n === 0 && this.#posted.length === 0 && !ring?.pending) {
          const waitStart = performance.now();
          this.#roundStart = -1;
          if (waker) {
            this.ringWaits++;
            if (!(await waker.wait(epfd))) {
              waker.close();
              waker = null;
            }
          }
          n = waker
            ? s.epoll_poll(epfd, events, maxEvents, 0)
            : await s.epoll_wait(epfd, events, maxEvents, -1);
          lastTurn = this.#roundStart = performance.now();
          dense = lastTurn - waitStart < denseGapMs;
        }
        if (n < 0) {
          // EINTR (a signal) is the only expected failure. A persistent one would be a bug and
          // would spin: after a bounded number the loop fails (an unhandled rejection ends the
          // process loudly) rather than burn a core in silence.
          if (++failures > 1000) throw new Error("epoll_wait keeps failing");
          continue;
        }
        failures = 0;
        if (n > 0 && this.#dispatch(n)) {
          // Let the continuations of the promises just settled run (reads parsed, writes
          // issued) before polling again; chains in the proxy are a few steps deep.
          if (ring) await this.#drain(ring);
          else for (let i = 0; i < settleTurns; i++) await null;
        }
      }
    } finally {
      waker?.close();
      this.#roundStart = -1;
      this.#loop = null;
    }
  }

  /** Hands out `n` events; true when any was for one of our sockets. */
  #dispatch(n: number): boolean {
    let forSockets = false;
    const stride = this.c.epollEventSize;
    const dataOffset = this.c.epollDataOffset;
    const view = this.#view;
    for (let i = 0, off = 0; i < n; i++, off += stride) {
      const events = view.getUint32(off, true);
      const fd = view.getUint32(off + dataOffset, true);
      const generation = view.getUint32(off + dataOffset + 4, true);
      if (generation === this.#generations[fd]) {
        const handler = this.#handlers[fd];
        if (handler) {
          handler.onEvents(events);
          forSockets = true;
        }
      } else if (generation === 0) {
        if (fd === this.#wakeFd) this.c.sym.read(this.#wakeFd, this.#wakeBytes, 8n);
      }
    }
    return forSockets;
  }
}

let reactor: Reactor | null = null;
let ringReactor: Reactor | null | undefined;
function getReactor(c: Libc, mode: "epoll" | "uring"): Reactor | null {
  if (mode === "epoll") return reactor ??= new Reactor(c);
  if (ringReactor === undefined) {
    const ring = SubmissionRing.open(c);
    ringReactor = ring ? new Reactor(c, ring) : null;
  }
  return ringReactor;
}

interface PendingRead {
  buf: Uint8Array;
  resolve: (n: number | null) => void;
  reject: (e: Error) => void;
}

interface PendingWrite {
  buf: Uint8Array;
  resolve: (n: number) => void;
  reject: (e: Error) => void;
}

/** A connected nonblocking TCP socket. */
class EpollConn implements StreamConn, Pollable {
  #readable = true;
  #writable = true;
  #hungUp = false;
  #closed = false;
  #pendingRead: PendingRead | null = null;
  #pendingWrite: PendingWrite | null = null;
  #remote: Deno.NetAddr | null = null;
  /** Whether TCP_NODELAY is on, so that setting it again costs no system call. */
  #noDelay: boolean;
  /**
   * `uring` mode: the ring slot of the last queued recv (send); the ring tells whether it still
   * holds the operation there ({@linkcode SubmissionRing.holds}).
   */
  #recvSlot = 0;
  #sendSlot = 0;
  readonly #recvOp = new RingOp((result) => this.#recvDone(result));
  readonly #sendOp = new RingOp((result) => this.#sendDone(result));

  constructor(
    readonly c: Libc,
    readonly r: Reactor,
    readonly fd: number,
    /** The peer's address (null: ask the kernel when first needed). */
    readonly peer: { host: string; port: number } | null,
    /**
     * Whether `TCP_NODELAY` is already on: an accepted socket inherits it from its listener,
     * so asking again would be a system call per connection for nothing.
     */
    noDelay = false,
  ) {
    this.#noDelay = noDelay;
  }

  get remoteAddr(): Deno.NetAddr {
    return this.#remote ??= {
      transport: "tcp",
      hostname: this.peer?.host ?? "0.0.0.0",
      port: this.peer?.port ?? 0,
    };
  }

  /**
   * The last length passed to recv and send, as the BigInt the FFI call takes: reads fill the
   * same buffer and same-shaped messages repeat their lengths, so the conversion (a heap
   * allocation) is usually skipped.
   */
  #recvLength = 0;
  #recvLengthBig = 0n;
  #sendLength = 0;
  #sendLengthBig = 0n;

  /** One recv: a count, 0 for end of stream, -1 when it would block; throws on error. */
  #recv(buf: Uint8Array): number {
    const length = buf.length;
    if (length !== this.#recvLength) {
      this.#recvLength = length;
      this.#recvLengthBig = BigInt(length);
    }
    for (;;) {
      const n = this.c.sym.recv(this.fd, buf, this.#recvLengthBig, 0);
      if (n > 0) {
        if (n < buf.length && !this.#hungUp) this.#readable = false;
        return n;
      }
      if (n === 0) return 0;
      const errno = this.c.errno();
      if (errno === EINTR) continue;
      if (errno === EAGAIN) {
        this.#readable = false;
        return -1;
      }
      throw socketError(errno, "recv");
    }
  }

  read(buf: Uint8Array): Promise<number | null> {
    if (this.#closed) return Promise.reject(closedError());
    if (this.#pendingRead) return Promise.reject(new Deno.errors.Busy("read already pending"));
    if (buf.length === 0) return Promise.resolve(0);
    if (this.r.ring) {
      const pending = new Promise<number | null>((resolve, reject) =>
        this.#pendingRead = { buf, resolve, reject }
      );
      if (this.#readable) this.#queueRecv(buf);
      return pending;
    }
    if (this.#readable) {
      if (!this.r.takeBudget()) this.r.post(this);
      else {
        let n: number;
        try {
          n = this.#recv(buf);
        } catch (err) {
          return Promise.reject(err);
        }
        if (n >= 0) return Promise.resolve(n === 0 ? null : n);
      }
    }
    return new Promise((resolve, reject) => (this.#pendingRead = { buf, resolve, reject }));
  }

  /** One send: a count, -1 when it would block; throws on error. */
  #send(buf: Uint8Array): number {
    const length = buf.length;
    if (length !== this.#sendLength) {
      this.#sendLength = length;
      this.#sendLengthBig = BigInt(length);
    }
    for (;;) {
      const n = this.c.sym.send(this.fd, buf, this.#sendLengthBig, MSG_NOSIGNAL);
      if (n >= 0) {
        if (n < buf.length) this.#writable = false;
        return n;
      }
      const errno = this.c.errno();
      if (errno === EINTR) continue;
      if (errno === EAGAIN) {
        this.#writable = false;
        return -1;
      }
      throw socketError(errno, "send");
    }
  }

  write(buf: Uint8Array): Promise<number> {
    if (this.#closed) return Promise.reject(closedError());
    if (this.#pendingWrite) return Promise.reject(new Deno.errors.Busy("write already pending"));
    if (buf.length === 0) return Promise.resolve(0);
    if (this.r.ring) {
      const pending = new Promise<number>((resolve, reject) =>
        this.#pendingWrite = { buf, resolve, reject }
      );
      if (this.#writable) this.#queueSend(buf);
      return pending;
    }
    if (this.#writable) {
      if (!this.r.takeBudget()) this.r.post(this);
      else {
        let n: number;
        try {
          n = this.#send(buf);
        } catch (err) {
          return Promise.reject(err);
        }
        if (n > 0) return Promise.resolve(n);
      }
    }
    return new Promise((resolve, reject) => (this.#pendingWrite = { buf, resolve, reject }));
  }

  tryWrite(buf: Uint8Array): number {
    if (this.r.ring) return -1;
    if (this.#closed || this.#pendingWrite || !this.#writable || buf.length === 0) return -1;
    if (!this.r.takeBudget()) return -1;
    try {
      const n = this.#send(buf);
      return n > 0 ? n : -1;
    } catch {
      // write() makes the same call again and reports the error.
      return -1;
    }
  }

  onEvents(events: number): void {
    if (events & hangupEvents) this.#hungUp = true;
    if (events & (EPOLLIN | hangupEvents)) this.#readable = true;
    if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) this.#writable = true;
    this.onPosted();
  }

  #queueRecv(buf: Uint8Array): void {
    const slot = this.r.queue(this, this.fd, buf, this.#recvOp, false);
    if (slot >= 0) this.#recvSlot = slot;
  }

  #queueSend(buf: Uint8Array): void {
    const slot = this.r.queue(this, this.fd, buf, this.#sendOp, true);
    if (slot >= 0) this.#sendSlot = slot;
  }

  /** `uring` mode: the result of the queued recv (a count, 0 at end of stream, -errno). */
  #recvDone(result: number): void {
    const p = this.#pendingRead;
    if (p === null || this.#closed) return;
    if (result > 0) {
      if (result < p.buf.length && !this.#hungUp) this.#readable = false;
      this.#pendingRead = null;
      p.resolve(result);
    } else if (result === 0) {
      this.#pendingRead = null;
      p.resolve(null);
    } else if (result === -EAGAIN) {
      // A stale hint: the read waits for the next edge (onEvents queues it again).
      this.#readable = false;
    } else if (result === -EINTR) {
      this.r.post(this);
    } else {
      this.#pendingRead = null;
      p.reject(socketError(-result, "recv"));
    }
  }

  /** `uring` mode: the result of the queued send. */
  #sendDone(result: number): void {
    const p = this.#pendingWrite;
    if (p === null || this.#closed) return;
    if (result > 0) {
      if (result < p.buf.length) this.#writable = false;
      this.#pendingWrite = null;
      p.resolve(result);
    } else if (result === -EAGAIN || result === 0) {
      this.#writable = false;
    } else if (result === -EINTR) {
      this.r.post(this);
    } else {
      this.#pendingWrite = null;
      p.reject(socketError(-result, "send"));
    }
  }

  /** Completes the pending read and write whose readiness hints say they can progress. */
  onPosted(): void {
    const ring = this.r.ring;
    if (ring) {
      if (this.#readable && this.#pendingRead && !ring.holds(this.#recvSlot, this.#recvOp)) {
        this.#queueRecv(this.#pendingRead.buf);
      }
      if (this.#writable && this.#pendingWrite && !ring.holds(this.#sendSlot, this.#sendOp)) {
        this.#queueSend(this.#pendingWrite.buf);
      }
      return;
    }
    if (this.#readable) {
      const p = this.#pendingRead;
      if (p) {
        try {
          const n = this.#recv(p.buf);
          if (n >= 0) {
            this.#pendingRead = null;
            p.resolve(n === 0 ? null : n);
          }
        } catch (err) {
          this.#pendingRead = null;
          p.reject(err as Error);
        }
      }
    }
    if (this.#writable) {
      const p = this.#pendingWrite;
      if (p) {
        try {
          const n = this.#send(p.buf);
          if (n > 0) {
            this.#pendingWrite = null;
            p.resolve(n);
          }
        } catch (err) {
          this.#pendingWrite = null;
          p.reject(err as Error);
        }
      }
    }
  }

  closeWrite(): Promise<void> {
    if (this.#closed) return Promise.reject(closedError());
    if (this.c.sym.shutdown(this.fd, SHUT_WR) < 0) {
      return Promise.reject(socketError(this.c.errno(), "shutdown"));
    }
    return Promise.resolve();
  }

  close(): void {
    if (this.#closed) throw closedError();
    this.#closed = true;
    this.r.remove(this.fd);
    // An operation still queued would run on this fd number, maybe reused by then: withdraw it
    // (a no-op when the ring no longer holds it).
    const ring = this.r.ring;
    if (ring) {
      ring.withdraw(this.#recvSlot, this.#recvOp);
      ring.withdraw(this.#sendSlot, this.#sendOp);
    }
    this.c.sym.close(this.fd);
    const r = this.#pendingRead, w = this.#pendingWrite;
    this.#pendingRead = this.#pendingWrite = null;
    if (r) r.reject(new Deno.errors.Interrupted("socket closed during read"));
    if (w) w.reject(new Deno.errors.Interrupted("socket closed during write"));
  }

  setNoDelay(noDelay = true): void {
    if (this.#closed || noDelay === this.#noDelay) return;
    if (!setIntOption(this.c, this.fd, IPPROTO_TCP, TCP_NODELAY, noDelay ? 1 : 0)) {
      throw socketError(this.c.errno(), "setsockopt");
    }
    this.#noDelay = noDelay;
  }
}

/** A nonblocking stream socket for an address of `ip`'s family (4 or 16 bytes). */
function newSocket(c: Libc, ip: Uint8Array): number {
  const family = ip.length === 4 ? AF_INET : AF_INET6;
  const fd = c.sym.socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw socketError(c.errno(), "socket");
  return fd;
}

/** A listening nonblocking socket; accepts in a burst on each edge. */
class EpollListener implements StreamListener, Pollable {
  readonly addr: HostPort;
  readonly #fd: number;
  readonly #sockaddr = new Uint8Array(sockaddrBytes);
  readonly #addrLen = new Uint32Array(1);
  readonly #addrLenBytes = new Uint8Array(this.#addrLen.buffer);
  #readable = true;
  #closed = false;
  readonly #waiting: { resolve: (c: StreamConn) => void; reject: (e: Error) => void }[] = [];

  constructor(readonly c: Libc, readonly r: Reactor, addr: HostPort, ip: Uint8Array) {
    const fd = newSocket(c, ip);
    try {
      // Accepted sockets inherit TCP_NODELAY from the listener (Linux clones the listener's
      // socket): set once here, not once per connection.
      if (
        !setIntOption(c, fd, SOL_SOCKET, SO_REUSEADDR, 1) ||
        !setIntOption(c, fd, IPPROTO_TCP, TCP_NODELAY, 1)
      ) {
        throw socketError(c.errno(), "setsockopt");
      }
      const sa = new Uint8Array(sockaddrBytes);
      const length = writeSockaddr(sa, ip, addr.port);
      if (c.sym.bind(fd, sa, length) < 0) throw socketError(c.errno(), `bind ${addr.hostname}`);
      if (c.sym.listen(fd, 1024) < 0) throw socketError(c.errno(), "listen");
      const port = localPort(c, fd);
      if (port < 0) throw socketError(c.errno(), "getsockname");
      this.addr = { hostname: addr.hostname, port };
      r.add(fd, this, EPOLLIN | EPOLLET);
    } catch (err) {
      c.sym.close(fd);
      throw err;
    }
    this.#fd = fd;
  }

  /** One accept4: a connection, null when none is waiting; throws on error. */
  #acceptOne(): StreamConn | null {
    const sa = this.#sockaddr;
    for (;;) {
      this.#addrLen[0] = sockaddrBytes;
      const fd = this.c.sym.accept4(
        this.#fd,
        sa,
        this.#addrLenBytes,
        SOCK_NONBLOCK | SOCK_CLOEXEC,
      );
      if (fd >= 0) {
        // sin_port and sin6_port sit at the same offset.
        const peer = { host: sockaddrHost(sa), port: (sa[2] << 8) | sa[3] };
        const conn = new EpollConn(this.c, this.r, fd, peer, true);
        this.r.add(fd, conn);
        return conn;
      }
      const errno = this.c.errno();
      if (errno === EINTR) continue;
      if (errno === EAGAIN) {
        this.#readable = false;
        return null;
      }
      // ECONNABORTED and friends concern one connection; EMFILE is retried on the next edge.
      throw socketError(errno, "accept");
    }
  }

  accept(): Promise<StreamConn> {
    if (this.#closed) return Promise.reject(closedError());
    if (this.#readable && this.#waiting.length === 0) {
      try {
        const conn = this.#acceptOne();
        if (conn) return Promise.resolve(conn);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  onEvents(): void {
    this.#readable = true;
    while (this.#waiting.length > 0) {
      let conn: StreamConn | null;
      try {
        conn = this.#acceptOne();
      } catch (err) {
        this.#waiting.shift()!.reject(err as Error);
        continue;
      }
      if (!conn) return;
      this.#waiting.shift()!.resolve(conn);
    }
  }

  close(): void {
    if (this.#closed) throw closedError();
    this.#closed = true;
    this.r.remove(this.#fd);
    this.c.sym.close(this.#fd);
    for (const w of this.#waiting.splice(0)) w.reject(closedError());
  }
}

/** A socket waiting for its nonblocking connect to finish; abandoned when `signal` aborts. */
class PendingConnect implements Pollable {
  #done = false;
  readonly #onAbort = (): void => {
    this.#finish(new Deno.errors.TimedOut(`connect ${this.peer.host}:${this.peer.port} aborted`));
  };

  constructor(
    readonly c: Libc,
    readonly r: Reactor,
    readonly fd: number,
    readonly peer: { host: string; port: number },
    readonly resolve: (c: StreamConn) => void,
    readonly reject: (e: Error) => void,
    readonly signal: AbortSignal | undefined,
  ) {
    signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** Fails the connect and frees its socket. */
  #finish(err: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.signal?.removeEventListener("abort", this.#onAbort);
    this.r.remove(this.fd);
    this.c.sym.close(this.fd);
    this.reject(err);
  }

  onEvents(events: number): void {
    if (this.#done || !(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    const err = new Int32Array(1);
    const len = new Uint32Array([4]);
    this.c.sym.getsockopt(
      this.fd,
      SOL_SOCKET,
      SO_ERROR,
      new Uint8Array(err.buffer),
      new Uint8Array(len.buffer),
    );
    if (err[0] !== 0) {
      this.#finish(socketError(err[0], `connect ${this.peer.host}:${this.peer.port}`));
      return;
    }
    this.#done = true;
    this.signal?.removeEventListener("abort", this.#onAbort);
    const conn = new EpollConn(this.c, this.r, this.fd, this.peer);
    // Same fd, same registration: the connection takes over its events.
    this.r.replace(this.fd, conn);
    conn.onEvents(events);
    this.resolve(conn);
  }
}

/**
 * The epoll network, or null where it cannot run (see {@linkcode loadLibc}; `uring` also needs
 * a kernel that grants an io_uring). In `uring` mode readiness still comes from epoll while
 * reads and writes are batched through an io_uring (io/uring.ts). Addresses that are not IP
 * literals (host names, or IPv6 with a zone) are served by `denoNetwork`.
 */
export function createEpollNetwork(mode: "epoll" | "uring" = "epoll"): Network | null {
  const c = loadLibc();
  if (!c) return null;
  const r = getReactor(c, mode);
  if (!r) return null;
  const sockaddr = new Uint8Array(sockaddrBytes);
  return {
    name: mode,
    listen(addr: HostPort): StreamListener {
      const ip = parseIp(addr.hostname);
      return ip ? new EpollListener(c, r, addr, ip) : denoNetwork.listen(addr);
    },
    connect(hostname: string, port: number, signal?: AbortSignal): Promise<StreamConn> {
      const ip = parseIp(hostname);
      if (!ip) return denoNetwork.connect(hostname, port, signal);
      if (signal?.aborted) {
        return Promise.reject(new Deno.errors.TimedOut(`connect ${hostname}:${port} aborted`));
      }
      let fd: number;
      try {
        fd = newSocket(c, ip);
      } catch (err) {
        return Promise.reject(err);
      }
      const peer = { host: hostname, port };
      const length = writeSockaddr(sockaddr, ip, port);
      if (c.sym.connect(fd, sockaddr, length) === 0) {
        const conn = new EpollConn(c, r, fd, peer);
        r.add(fd, conn);
        return Promise.resolve(conn);
      }
      const errno = c.errno();
      if (errno !== EINPROGRESS) {
        c.sym.close(fd);
        return Promise.reject(socketError(errno, `connect ${hostname}:${port}`));
      }
      return new Promise((resolve, reject) => {
        r.add(fd, new PendingConnect(c, r, fd, peer, resolve, reject, signal));
      });
    },
    settled: () => r.settled(),
    now: r.now,
  };
}

/**
 * Ring operations that did not complete in the call that submitted them (uring mode). The
 * design relies on there being none (every operation is tried on a ready socket with
 * `MSG_DONTWAIT`); the tests check it.
 */
export function lateRingCompletions(): number {
  return ringReactor?.ring?.late ?? 0;
}

/** Idle waits the `uring` reactor did through the ring's watch (tests check it is used). */
export function ringIdleWaits(): number {
  return ringReactor?.ringWaits ?? 0;
}

/** Why the epoll backend is not available here, in one line. */
export const epollUnavailable =
  "the epoll backend needs Linux on x86_64 or aarch64 and the FFI permission (--allow-ffi)";

/** Why the uring mode is not available here, in one line. */
export const uringUnavailable =
  "the uring backend needs Linux on x86_64 or aarch64, the FFI permission (--allow-ffi) and a kernel that allows io_uring (5.19 or later, kernel.io_uring_disabled=0)";

/**
 * The network for a `proxy.network` setting. "auto" is uring where it loads, else Deno's
 * sockets: plain epoll is skipped because its idle wait (on a worker thread) makes it the
 * dearest backend at light load. "epoll" and "uring" throw where they cannot load.
 */
export function selectNetwork(choice: "auto" | "deno" | "epoll" | "uring"): Network {
  if (choice === "deno") return denoNetwork;
  if (choice === "epoll") {
    const epoll = createEpollNetwork();
    if (epoll) return epoll;
    throw new Error(epollUnavailable);
  }
  const uring = createEpollNetwork("uring");
  if (uring) return uring;
  if (choice === "uring") throw new Error(uringUnavailable);
  return denoNetwork;
}
