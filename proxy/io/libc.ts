/**
 * @module
 * The few libc calls the epoll network backend needs, bound with Deno's FFI, plus the Linux
 * constants and struct layouts they use. Loading is optional: {@linkcode loadLibc} answers
 * null (and the proxy stays on Deno's own sockets) off Linux x86_64/aarch64 or without the
 * `--allow-ffi` permission.
 *
 * Why: each Deno socket read or write is an async op through the runtime (about a third of the
 * proxy's CPU when measured); a nonblocking `recv`/`send` through a fast FFI call costs the
 * syscall and little more, and one `epoll_wait` reports readiness for many sockets at once.
 */

const symbols = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  socketpair: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  accept4: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // ssize_t results are declared i32: counts stay below 2^31 and both ABIs return them in a
  // 64-bit register whose low half is the same value, which keeps the call on V8's fast path.
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "i32" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  /** Blocks on a runtime worker thread; the promise settles when events arrive. */
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32", nonblocking: true },
  /** The same call made synchronously with a zero timeout (a poll). */
  epoll_poll: {
    name: "epoll_wait",
    parameters: ["i32", "buffer", "i32", "i32"],
    result: "i32",
  },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  /**
   * A short sleep on a runtime worker thread: awaiting it makes the JS thread's runtime park,
   * which is when it polls its own sockets and timers. (A bare `sched_yield` returns before the
   * runtime has parked often enough that its sockets were starved.)
   */
  usleep: { parameters: ["u32"], result: "i32", nonblocking: true },
  __errno_location: { parameters: [], result: "pointer" },
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  /** `syscall(SYS_io_uring_setup, entries, params)` (io/uring.ts); libc has no wrapper. */
  io_uring_setup: { name: "syscall", parameters: ["usize", "u32", "buffer"], result: "i32" },
  /** `syscall(SYS_io_uring_enter, fd, to_submit, min_complete, flags, sigset, sigset_size)`. */
  io_uring_enter: {
    name: "syscall",
    parameters: ["usize", "u32", "u32", "u32", "u32", "pointer", "usize"],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;

export type LibcSymbols = Deno.DynamicLibrary<typeof symbols>["symbols"];

export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_NONBLOCK = 0x800;
export const SOCK_CLOEXEC = 0x80000;
export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_ERROR = 4;
export const IPPROTO_TCP = 6;
export const TCP_NODELAY = 1;
export const MSG_NOSIGNAL = 0x4000;
export const SHUT_WR = 1;

export const EPOLLIN = 0x1;
export const EPOLLOUT = 0x4;
export const EPOLLERR = 0x8;
export const EPOLLHUP = 0x10;
export const EPOLLRDHUP = 0x2000;
export const EPOLLET = 0x80000000;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CLOEXEC = 0x80000;
export const EFD_NONBLOCK = 0x800;
export const EFD_CLOEXEC = 0x80000;

export const EINTR = 4;
/** io_uring's system call numbers, the same on x86_64 and aarch64 (the generic table). */
export const SYS_io_uring_setup = 425n;
export const SYS_io_uring_enter = 426n;
export const EAGAIN = 11;
export const EINPROGRESS = 115;

/** Bound libc plus what varies by architecture. */
export interface Libc {
  readonly sym: LibcSymbols;
  /** Size of `struct epoll_event`: packed (12) on x86_64, 16 on aarch64. */
  readonly epollEventSize: number;
  /** Offset of the `data` union inside `struct epoll_event`. */
  readonly epollDataOffset: number;
  /** The calling thread's `errno`, valid right after a failed call. */
  errno(): number;
}

let loaded: Libc | null | undefined;

/**
 * Loads libc once. Null when the platform is not Linux x86_64/aarch64, the FFI permission is
 * not granted, or the library cannot be opened; callers then use Deno's sockets.
 */
export function loadLibc(): Libc | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  if (Deno.build.os !== "linux") return null;
  const arch = Deno.build.arch;
  if (arch !== "x86_64" && arch !== "aarch64") return null;
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
  let lib: Deno.DynamicLibrary<typeof symbols>;
  try {
    lib = Deno.dlopen("libc.so.6", symbols);
  } catch {
    return null;
  }
  const errnoPointer = lib.symbols.__errno_location();
  if (errnoPointer === null) return null;
  // errno lives at a fixed address per thread, and every call here runs on this thread
  // (epoll_wait's worker thread has its own and its failures are read from the result).
  const errnoView = new Deno.UnsafePointerView(errnoPointer);
  loaded = {
    sym: lib.symbols,
    epollEventSize: arch === "x86_64" ? 12 : 16,
    epollDataOffset: arch === "x86_64" ? 4 : 8,
    errno: () => errnoView.getInt32(0),
  };
  return loaded;
}

/** Sets an integer socket option; false when the call failed (`c.errno()` says why). */
export function setIntOption(
  c: Libc,
  fd: number,
  level: number,
  name: number,
  value: number,
): boolean {
  const v = new Int32Array([value]);
  return c.sym.setsockopt(fd, level, name, new Uint8Array(v.buffer), 4) === 0;
}

/** Bytes of the largest socket address used here, a `sockaddr_in6`. */
export const sockaddrBytes = 28;

/** The local port of an IPv4 or IPv6 socket (`getsockname`), or -1 when the call failed. */
export function localPort(c: Libc, fd: number): number {
  const sa = new Uint8Array(sockaddrBytes);
  const length = new Uint32Array([sockaddrBytes]);
  if (c.sym.getsockname(fd, sa, new Uint8Array(length.buffer)) < 0) return -1;
  // sin_port and sin6_port sit at the same offset.
  return (sa[2] << 8) | sa[3];
}

/** Writes a `sockaddr_in` for an IPv4 address and port into `out` (16 bytes). */
export function writeSockaddrIn(out: Uint8Array, ipv4: ArrayLike<number>, port: number): void {
  out.fill(0);
  out[0] = AF_INET & 0xff;
  out[1] = AF_INET >> 8;
  out[2] = port >> 8;
  out[3] = port & 0xff;
  out[4] = ipv4[0];
  out[5] = ipv4[1];
  out[6] = ipv4[2];
  out[7] = ipv4[3];
}

/** The four octets of a dotted IPv4 literal, or null for anything else (names, IPv6). */
export function parseIpv4(host: string): number[] | null {
  const parts = host.split(".");
  if (parts.length !== 4) return null;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out.push(n);
  }
  return out;
}

/**
 * The 16 bytes of an IPv6 literal (`::1`, `fe80::1:2`, `::ffff:10.0.0.1`), or null for anything
 * else. A zone (`fe80::1%eth0`) is not handled here: it returns null and such addresses go to
 * Deno's sockets.
 */
export function parseIpv6(host: string): Uint8Array | null {
  if (!host.includes(":") || !/^[0-9A-Fa-f:.]+$/.test(host)) return null;
  const halves = host.split("::");
  if (halves.length > 2) return null;
  // Groups of one side of "::"; a dotted IPv4 tail is allowed only at the end of the address.
  const groups = (part: string, atEnd: boolean): number[] | null => {
    if (part === "") return [];
    const out: number[] = [];
    const pieces = part.split(":");
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i];
      if (atEnd && i === pieces.length - 1 && piece.includes(".")) {
        const v4 = parseIpv4(piece);
        if (!v4) return null;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else if (/^[0-9A-Fa-f]{1,4}$/.test(piece)) {
        out.push(parseInt(piece, 16));
      } else {
        return null;
      }
    }
    return out;
  };
  const head = groups(halves[0], halves.length === 1);
  const tail = halves.length === 2 ? groups(halves[1], true) : [];
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  // "::" stands for at least one group; without it the eight groups must all be there.
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const all = [...head, ...new Array(missing).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    bytes[2 * i] = all[i] >> 8;
    bytes[2 * i + 1] = all[i] & 0xff;
  }
  return bytes;
}

/** The bytes of an IPv4 (4) or IPv6 (16) literal, or null for a name. */
export function parseIp(host: string): Uint8Array | null {
  const v4 = parseIpv4(host);
  return v4 ? new Uint8Array(v4) : parseIpv6(host);
}

/**
 * Writes a `sockaddr_in` (4-byte address) or `sockaddr_in6` (16-byte address) into `out`, which
 * holds {@linkcode sockaddrBytes}, and returns its length.
 */
export function writeSockaddr(out: Uint8Array, ip: Uint8Array, port: number): number {
  if (ip.length === 4) {
    writeSockaddrIn(out, ip, port);
    return 16;
  }
  out.fill(0);
  out[0] = AF_INET6 & 0xff;
  out[1] = AF_INET6 >> 8;
  out[2] = port >> 8;
  out[3] = port & 0xff;
  out.set(ip, 8);
  return sockaddrBytes;
}

/**
 * The address in a `sockaddr_in` or `sockaddr_in6`, written as Deno writes a peer's: dotted
 * IPv4, or IPv6 with its longest run of zero groups shortened to `::` (RFC 5952), an
 * IPv4-mapped address as `::ffff:a.b.c.d`.
 */
export function sockaddrHost(sa: Uint8Array): string {
  if ((sa[0] | (sa[1] << 8)) === AF_INET) return `${sa[4]}.${sa[5]}.${sa[6]}.${sa[7]}`;
  let mapped = sa[18] === 0xff && sa[19] === 0xff;
  for (let i = 8; i < 18 && mapped; i++) mapped = sa[i] === 0;
  if (mapped) return `::ffff:${sa[20]}.${sa[21]}.${sa[22]}.${sa[23]}`;
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((sa[8 + 2 * i] << 8) | sa[9 + 2 * i]);
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j;
  }
  const hex = (from: number, to: number) =>
    groups.slice(from, to).map((g) => g.toString(16)).join(":");
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}
