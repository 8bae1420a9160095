/**
 * @module
 * An io_uring used as a batch of system calls, for the epoll backend's `uring` mode: the
 * reactor still learns readiness from epoll, but instead of one `recv`/`send` call per read and
 * write (each a kernel entry, the larger part of a small request's kernel time on a virtual
 * machine) it queues them here and submits a whole round's worth with one `io_uring_enter`.
 *
 * Every operation is issued with `MSG_DONTWAIT` on a nonblocking socket that epoll reported
 * ready, so the kernel completes it inside that same call: it never arms a poll of its own,
 * never hands work to a kernel thread and never queues task work, which is what made a
 * completion-driven io_uring interrupt the proxy's thread (see docs/proxy.md). A would-block
 * answer comes back as `-EAGAIN`, like the direct call's, and the socket waits for its next
 * epoll edge. A kernel where that does not hold (an old one that arms a poll anyway) is
 * detected when the ring is opened, and the ring refused. Buffers are passed by address, so
 * each one must stay untouched until its completion has been reaped (the reactor's callers
 * await their reads and writes) and alive (the ring keeps a reference).
 */
import {
  AF_UNIX,
  EAGAIN,
  EINTR,
  type Libc,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SYS_io_uring_enter,
  SYS_io_uring_setup,
} from "./libc.ts";

const IORING_SETUP_CQSIZE = 1 << 3;
const IORING_SETUP_SUBMIT_ALL = 1 << 7;
const IORING_SETUP_COOP_TASKRUN = 1 << 8;
const IORING_SETUP_SINGLE_ISSUER = 1 << 12;
const IORING_FEAT_SINGLE_MMAP = 1 << 0;
const IORING_OFF_SQ_RING = 0;
const IORING_OFF_CQ_RING = 0x8000000;
const IORING_OFF_SQES = 0x10000000;
const IORING_OP_NOP = 0;
const IORING_OP_POLL_ADD = 6;
const IORING_OP_ASYNC_CANCEL = 14;
const IOSQE_IO_LINK = 1 << 2;
const POLLIN = 0x1;
/** Marks a watch's entries in their user data: they complete later, by design. */
const watchMark = 0x80000000;
const IORING_OP_SEND = 26;
const IORING_OP_RECV = 27;
const PROT_READ_WRITE = 3;
const MAP_SHARED_POPULATE = 0x1 | 0x8000;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const sqeSize = 64;
const cqeSize = 16;
const paramsSize = 120;

/** What the reactor hands the ring: one per socket and direction, reused for each operation. */
export class RingOp {
  /**
   * The backing store of this operation's last buffer and its address: a socket reads into
   * the same buffer every time, so the address is usually known without a lookup.
   */
  backing: ArrayBufferLike | null = null;
  base = 0;

  /** `complete` receives the kernel's result: a count, or a negated errno. */
  constructor(readonly complete: (result: number) => void) {}
}

/** An io_uring with its submission and completion queues mapped into this isolate. */
export class SubmissionRing {
  readonly #fd: number;
  /** Submission queue ring fields and index array, as 32-bit words. */
  readonly #sq: Uint32Array;
  readonly #sqHead: number;
  readonly #sqTail: number;
  readonly #sqMask: number;
  readonly #sqEntries: number;
  /** The submission entries themselves, as 32-bit words (16 per entry). */
  readonly #sqes: Uint32Array;
  readonly #cq: Int32Array;
  readonly #cqHead: number;
  readonly #cqTail: number;
  readonly #cqMask: number;
  /** Word index of the first completion entry within `#cq`. */
  readonly #cqes: number;
  /** Operations submitted and not yet completed, by the slot their entry was written in. */
  readonly #ops: (RingOp | undefined)[];
  /**
   * Their buffers, held until the completion: a socket closed meanwhile drops its own
   * reference, and the kernel must not write into memory the collector freed.
   */
  readonly #buffers: (Uint8Array | undefined)[];
  /**
   * The sequence number each slot's operation was queued with, also in its user data: a late
   * completion whose slot was reused meanwhile is recognised and dropped.
   */
  readonly #sequences: Uint32Array;
  #sequence = 0;
  /** Entries written since the last submit. */
  #queued = 0;
  /** Completions that did not arrive in the call that submitted them (should stay 0). */
  late = 0;
  /** Base address of each buffer's backing store: computing it is a 0.3 us runtime call. */
  readonly #bases = new WeakMap<ArrayBufferLike, number>();

  private constructor(readonly c: Libc, fd: number, params: Uint32Array) {
    this.#fd = fd;
    const sqEntries = params[0];
    const cqEntries = params[1];
    const features = params[5];
    // io_sqring_offsets at byte 40, io_cqring_offsets at byte 80 (10 words each).
    const sqOff = params.subarray(10, 20);
    const cqOff = params.subarray(20, 30);
    const sqBytes = sqOff[6] + sqEntries * 4;
    const cqBytes = cqOff[5] + cqEntries * cqeSize;
    const single = (features & IORING_FEAT_SINGLE_MMAP) !== 0;
    const sqMapBytes = single ? Math.max(sqBytes, cqBytes) : sqBytes;
    const sqRing = this.#map(sqMapBytes, IORING_OFF_SQ_RING);
    const cqRing = single ? sqRing : this.#map(cqBytes, IORING_OFF_CQ_RING);
    const sqes = this.#map(sqEntries * sqeSize, IORING_OFF_SQES);
    this.#sq = new Uint32Array(sqRing);
    this.#sqHead = sqOff[0] / 4;
    this.#sqTail = sqOff[1] / 4;
    this.#sqMask = this.#sq[sqOff[2] / 4];
    this.#sqEntries = sqEntries;
    // The index array maps ring positions to entries; the identity map is written once.
    const array = sqOff[6] / 4;
    for (let i = 0; i < sqEntries; i++) this.#sq[array + i] = i;
    this.#sqes = new Uint32Array(sqes);
    this.#cq = new Int32Array(cqRing);
    this.#cqHead = cqOff[0] / 4;
    this.#cqTail = cqOff[1] / 4;
    this.#cqMask = this.#cq[cqOff[2] / 4];
    this.#cqes = cqOff[5] / 4;
    this.#ops = new Array(sqEntries).fill(undefined);
    this.#buffers = new Array(sqEntries).fill(undefined);
    this.#sequences = new Uint32Array(sqEntries);
  }

  #map(bytes: number, offset: number): ArrayBuffer {
    const s = this.c.sym;
    const pointer = s.mmap(
      null,
      BigInt(bytes),
      PROT_READ_WRITE,
      MAP_SHARED_POPULATE,
      this.#fd,
      BigInt(offset),
    );
    if (pointer === null || Deno.UnsafePointer.value(pointer) === 0xffffffffffffffffn) {
      throw new Error(`io_uring mmap: errno ${this.c.errno()}`);
    }
    return Deno.UnsafePointerView.getArrayBuffer(pointer, bytes);
  }

  /** A ring of `entries` submissions, or null where the kernel refuses one (old, disabled). */
  static open(c: Libc, entries = 1024): SubmissionRing | null {
    const params = new Uint32Array(paramsSize / 4);
    const bytes = new Uint8Array(params.buffer);
    const tries = [
      IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
      IORING_SETUP_SINGLE_ISSUER,
      IORING_SETUP_CQSIZE,
    ];
    for (const flags of tries) {
      params.fill(0);
      params[1] = entries * 2;
      params[2] = flags;
      const fd = c.sym.io_uring_setup(SYS_io_uring_setup, entries, bytes);
      if (fd < 0) continue;
      try {
        const ring = new SubmissionRing(c, fd, params);
        if (ring.#completesInline()) return ring;
      } catch {
        // Mapping failed: no ring.
      }
      c.sym.close(fd);
      return null;
    }
    return null;
  }

  /**
   * Whether this kernel completes a ready-socket operation inside the submitting call and
   * answers would-block at once: a recv on an empty socket must come back as -EAGAIN, then a
   * send and a recv of the same bytes must both complete, all within their submits.
   */
  #completesInline(): boolean {
    const pair = new Int32Array(2);
    const c = this.c;
    if (c.sym.socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) < 0) {
      return false;
    }
    try {
      const results: number[] = [];
      const op = new RingOp((result) => results.push(result));
      const buf = new Uint8Array(16);
      this.recv(pair[1], buf, op);
      this.submit();
      if (results.length !== 1 || results[0] !== -EAGAIN) return false;
      buf.fill(7);
      this.send(pair[0], buf.subarray(0, 8), op);
      this.recv(pair[1], buf.subarray(8), op);
      this.submit();
      return (results.length as number) === 3 && results[1] === 8 && results[2] === 8 &&
        this.late === 0;
    } finally {
      c.sym.close(pair[0]);
      c.sym.close(pair[1]);
    }
  }

  /** How many more operations fit before the next submit. */
  get room(): number {
    const sq = this.#sq;
    return this.#sqEntries - ((sq[this.#sqTail] - sq[this.#sqHead]) >>> 0) - this.#queued;
  }

  /** Whether operations wait to be submitted. */
  get pending(): boolean {
    return this.#queued > 0;
  }

  /** How many operations wait to be submitted. */
  get queued(): number {
    return this.#queued;
  }

  #address(buf: Uint8Array, op: RingOp): number {
    const backing = buf.buffer;
    if (backing === op.backing) return op.base + buf.byteOffset;
    let base = this.#bases.get(backing);
    if (base === undefined) {
      base = Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(backing)));
      this.#bases.set(backing, base);
    }
    op.backing = backing;
    op.base = base;
    return base + buf.byteOffset;
  }

  /** Queues a `recv` into `buf` (the caller checked `room`); answers its slot. */
  recv(fd: number, buf: Uint8Array, op: RingOp): number {
    return this.#queue(IORING_OP_RECV, fd, buf, MSG_DONTWAIT, op);
  }

  /** Queues a `send` of `buf` (the caller checked `room`); answers its slot. */
  send(fd: number, buf: Uint8Array, op: RingOp): number {
    return this.#queue(IORING_OP_SEND, fd, buf, MSG_DONTWAIT | MSG_NOSIGNAL, op);
  }

  /** Whether `op` sits in `slot`, queued or submitted, its completion not yet handed out. */
  holds(slot: number, op: RingOp): boolean {
    return this.#ops[slot] === op;
  }

  /**
   * Turns `op`, queued in `slot` and not yet submitted, into a no-op: its socket is being
   * closed, and its fd number may be reused before the submit. Its completion is ignored.
   */
  withdraw(slot: number, op: RingOp): void {
    if (this.#ops[slot] !== op) return;
    this.#sqes[slot * 16] = IORING_OP_NOP;
    this.#ops[slot] = undefined;
    this.#buffers[slot] = undefined;
  }

  /**
   * Arms a one-shot watch: once `pollFd` (the epoll set) is readable, the kernel sends `byte`
   * on `signalFd` (the caller keeps `byte` alive), a socket whose peer the runtime's own event
   * loop polls. The poll completes in task work on this thread: when the thread sleeps in the
   * runtime's wait, the kernel wakes it for that, and the send then wakes the runtime; no
   * other thread is involved. Submitted at once, with whatever else was queued; the watch's
   * completions are not handed out.
   */
  watch(pollFd: number, signalFd: number, byte: Uint8Array): void {
    const w = this.#sqes;
    const at = this.#watchEntry(IORING_OP_POLL_ADD, pollFd, 0, 0, POLLIN);
    w[at] |= IOSQE_IO_LINK << 8;
    this.#watchPoll[0] = w[at + 8];
    this.#watchPoll[1] = w[at + 9];
    const address = this.#address(byte, this.#watchOp);
    this.#watchEntry(IORING_OP_SEND, signalFd, address, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    this.submit();
  }

  /**
   * Cancels the last watch if it is still armed, and with it its send: needed before its
   * signal socket is closed, whose descriptor could otherwise be reused and get the byte.
   */
  cancelWatch(): void {
    const at = this.#watchEntry(IORING_OP_ASYNC_CANCEL, -1, 0, 0, 0);
    // The entry's address is the user data of the poll to cancel (64 bits, beyond a number).
    this.#sqes[at + 4] = this.#watchPoll[0];
    this.#sqes[at + 5] = this.#watchPoll[1];
    this.submit();
  }

  /**
   * Writes an entry of a watch: marked in its user data and counted apart, since it completes
   * later by design. Answers the entry's first word index in `#sqes`.
   */
  #watchEntry(opcode: number, fd: number, address: number, length: number, flags: number): number {
    const at = this.#entry(opcode, fd, address, length, flags) * 16;
    this.#sqes[at + 8] |= watchMark;
    this.#watchQueued++;
    return at;
  }

  /** The user data of the last watch's poll, to cancel it by. */
  readonly #watchPoll = new Uint32Array(2);
  /** Caches the watch byte's address. */
  readonly #watchOp = new RingOp(() => {});
  /** Watch entries among those queued: they are not expected to complete in the submit. */
  #watchQueued = 0;

  #queue(opcode: number, fd: number, buf: Uint8Array, msgFlags: number, op: RingOp): number {
    const slot = this.#entry(opcode, fd, this.#address(buf, op), buf.length, msgFlags);
    this.#ops[slot] = op;
    this.#buffers[slot] = buf;
    return slot;
  }

  /** Writes the next submission entry; answers its slot. */
  #entry(opcode: number, fd: number, address: number, length: number, opFlags: number): number {
    const sq = this.#sq;
    const tail = sq[this.#sqTail] + this.#queued;
    const slot = tail & this.#sqMask;
    const w = this.#sqes;
    const at = slot * 16;
    w[at] = opcode;
    w[at + 1] = fd;
    w[at + 2] = 0;
    w[at + 3] = 0;
    w[at + 4] = address >>> 0;
    w[at + 5] = Math.floor(address / 4294967296);
    w[at + 6] = length;
    w[at + 7] = opFlags;
    const sequence = this.#sequence = (this.#sequence + 1) >>> 0;
    this.#sequences[slot] = sequence;
    w[at + 8] = slot;
    w[at + 9] = sequence;
    w[at + 10] = 0;
    w[at + 11] = 0;
    w[at + 12] = 0;
    w[at + 13] = 0;
    w[at + 14] = 0;
    w[at + 15] = 0;
    this.#queued++;
    return slot;
  }

  /**
   * Submits what was queued (one system call) and hands out every completion: each queued
   * operation's, since they complete inline, plus any that came late. Returns how many
   * completions were handed out; throws only if the kernel refuses the call itself.
   */
  submit(): number {
    const queued = this.#queued;
    const inline = queued - this.#watchQueued;
    this.#watchQueued = 0;
    if (queued > 0) {
      const sq = this.#sq;
      const tail = sq[this.#sqTail] = (sq[this.#sqTail] + queued) >>> 0;
      this.#queued = 0;
      // Everything the kernel has not consumed, in case an earlier call stopped short.
      const unconsumed = (tail - sq[this.#sqHead]) >>> 0;
      let submitted = this.#enter(unconsumed);
      for (let i = 0; submitted < 0 && this.c.errno() === EINTR && i < 100; i++) {
        submitted = this.#enter(unconsumed);
      }
      if (submitted < 0) throw new Error(`io_uring_enter: errno ${this.c.errno()}`);
    }
    return this.#reap(inline);
  }

  #enter(count: number): number {
    return this.c.sym.io_uring_enter(SYS_io_uring_enter, this.#fd, count, 0, 0, null, 0n);
  }

  #reap(expected: number): number {
    const cq = this.#cq;
    let head = cq[this.#cqHead];
    // A plain read suffices: completions are posted during our own io_uring_enter, which has
    // returned (no kernel thread writes the ring concurrently in this mode).
    const tail = cq[this.#cqTail];
    let n = 0;
    while (head !== tail) {
      const at = this.#cqes + ((head & this.#cqMask) * 4);
      const slot = cq[at];
      const result = cq[at + 2];
      head = (head + 1) | 0;
      if (slot < 0) continue; // a watch's entry (watchMark set)
      n++;
      if (this.#sequences[slot] !== cq[at + 1] >>> 0) continue;
      const op = this.#ops[slot];
      this.#ops[slot] = undefined;
      this.#buffers[slot] = undefined;
      if (op) op.complete(result);
    }
    cq[this.#cqHead] = head;
    if (n < expected) this.late += expected - n;
    return n;
  }
}
