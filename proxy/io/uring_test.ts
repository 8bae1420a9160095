/**
 * @module
 * The submission ring on its own (io/uring.ts), over a local socket pair: operations complete
 * inside their submit, would-block comes back as -EAGAIN, a withdrawn operation does not run,
 * room is counted, and a watch of an epoll set wakes the runtime. Skipped where the kernel grants no io_uring (or FFI is not allowed).
 */
import {
  AF_UNIX,
  EPOLL_CLOEXEC,
  EPOLL_CTL_ADD,
  EPOLLIN,
  loadLibc,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_STREAM,
} from "./libc.ts";
import { RingWaker } from "./ring_wake.ts";
import { RingOp, SubmissionRing } from "./uring.ts";
import { assert, assertEquals } from "../../tests/support/assert.ts";

const libc = loadLibc();
const ring = libc ? SubmissionRing.open(libc, 8) : null;
const ignore = ring === null;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function ringTest(name: string, fn: (r: SubmissionRing, pair: Int32Array) => void): void {
  Deno.test({
    name,
    ignore,
    fn() {
      const c = libc!;
      const pair = new Int32Array(2);
      assertEquals(
        c.sym.socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair),
        0,
      );
      try {
        fn(ring!, pair);
        assertEquals(ring!.late, 0, "every operation completed in its submit");
      } finally {
        c.sym.close(pair[0]);
        c.sym.close(pair[1]);
      }
    },
  });
}

ringTest("operations complete inside their submit, would-block as -EAGAIN", (r, [a, b]) => {
  const results: number[] = [];
  const op = new RingOp((result) => results.push(result));
  const got = new Uint8Array(32);
  r.recv(b, got, op);
  assertEquals(r.submit(), 1);
  assertEquals(results, [-11], "nothing to read yet");
  const sent = encoder.encode("batched bytes");
  r.send(a, sent, op);
  r.recv(b, got.subarray(4), op);
  assertEquals(r.submit(), 2, "both completions in the same call");
  assertEquals(results, [-11, sent.length, sent.length]);
  assertEquals(decoder.decode(got.subarray(4, 4 + sent.length)), "batched bytes");
});

ringTest("a withdrawn send is not run and its completion is not handed out", (r, [a, b]) => {
  const results: string[] = [];
  const withdrawn = new RingOp((result) => results.push(`withdrawn ${result}`));
  const kept = new RingOp((result) => results.push(`kept ${result}`));
  const slot = r.send(a, encoder.encode("dropped"), withdrawn);
  r.send(a, encoder.encode("kept"), kept);
  r.withdraw(slot, withdrawn);
  r.submit();
  assertEquals(results, ["kept 4"]);
  const got = new Uint8Array(16);
  assertEquals(libc!.sym.recv(b, got, 16n, 0), 4, "only the kept bytes arrived");
  assertEquals(decoder.decode(got.subarray(0, 4)), "kept");
});

ringTest("room counts queued operations until they are submitted", (r, [a]) => {
  const op = new RingOp(() => {});
  const before = r.room;
  r.send(a, encoder.encode("x"), op);
  r.send(a, encoder.encode("y"), op);
  assertEquals(r.room, before - 2);
  assertEquals(r.queued, 2);
  r.submit();
  assertEquals(r.room, before);
  assertEquals(r.pending, false);
});

/** An epoll set watching the read end of a new socket pair: [epfd, write end, read end]. */
function watchedSet(): [number, number, number] {
  const c = libc!;
  const pair = new Int32Array(2);
  assertEquals(c.sym.socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair), 0);
  const epfd = c.sym.epoll_create1(EPOLL_CLOEXEC);
  const event = new Uint8Array(16);
  new DataView(event.buffer).setUint32(0, EPOLLIN, true);
  assertEquals(c.sym.epoll_ctl(epfd, EPOLL_CTL_ADD, pair[1], event), 0);
  return [epfd, pair[0], pair[1]];
}

/** What a watch test gets: the set, the way to make it readable, and the signal socket's reads. */
interface WatchCase {
  epfd: number;
  /** The watch's signal socket (our end, which the linked send writes to). */
  signalFd: number;
  makeReadable(): void;
  /** One nonblocking read of the signal socket's peer: a count, or -1 when empty. */
  readSignal(into: Uint8Array): number;
}

/** A ring test with a watched epoll set and a signal socket pair, all closed afterwards. */
function watchTest(name: string, fn: (w: WatchCase) => Promise<void>): void {
  Deno.test({
    name,
    ignore,
    async fn() {
      const c = libc!;
      const [epfd, watchedIn, watchedOut] = watchedSet();
      const signal = new Int32Array(2);
      c.sym.socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, signal);
      try {
        await fn({
          epfd,
          signalFd: signal[0],
          makeReadable: () => assertEquals(c.sym.send(watchedIn, encoder.encode("x"), 1n, 0), 1),
          readSignal: (into) => c.sym.recv(signal[1], into, BigInt(into.length), 0),
        });
        assertEquals(ring!.late, 0, "the watch's completions are not counted as late");
      } finally {
        for (const fd of [epfd, watchedIn, watchedOut, signal[0], signal[1]]) c.sym.close(fd);
      }
    },
  });
}

watchTest("a watch sends its byte once the epoll set it watches becomes readable", async (w) => {
  const got = new Uint8Array(4);
  ring!.watch(w.epfd, w.signalFd, new Uint8Array([42]));
  assertEquals(w.readSignal(got), -1, "nothing sent while the set is empty");
  w.makeReadable();
  // The watch completes in task work on this thread: poll for the byte with a deadline.
  let n = -1;
  for (const until = Date.now() + 3000; n < 0 && Date.now() < until;) {
    n = w.readSignal(got);
    if (n < 0) await new Promise((r) => setTimeout(r, 1));
  }
  assertEquals(n, 1, "one byte once the set became readable");
  assertEquals(got[0], 42);
});

watchTest("a cancelled watch sends nothing when the set becomes readable", async (w) => {
  const got = new Uint8Array(4);
  ring!.watch(w.epfd, w.signalFd, new Uint8Array([42]));
  ring!.cancelWatch();
  w.makeReadable();
  // Give task work many chances to run (each timer wait enters and leaves the kernel).
  for (let i = 0; i < 20; i++) {
    assertEquals(w.readSignal(got), -1, "no byte from a cancelled watch");
    await new Promise((r) => setTimeout(r, 1));
  }
});

Deno.test({
  name: "the ring waker resolves when the epoll set gets an event",
  ignore,
  async fn() {
    const c = libc!;
    const waker = await RingWaker.open(ring!, c);
    assert(waker !== null, "a waker opens where a ring does");
    const [epfd, watchedIn, watchedOut] = watchedSet();
    try {
      const woke = waker.wait(epfd);
      setTimeout(() => c.sym.send(watchedIn, encoder.encode("x"), 1n, 0), 20);
      assertEquals(await woke, true);
    } finally {
      waker.close();
      for (const fd of [epfd, watchedIn, watchedOut]) c.sym.close(fd);
    }
  },
});
