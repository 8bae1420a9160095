/**
 * @module
 * The submission ring on its own (io/uring.ts), over a local socket pair: operations complete
 * inside their submit, would-block comes back as -EAGAIN, a withdrawn operation does not run,
 * and room is counted. Skipped where the kernel grants no io_uring (or FFI is not allowed).
 */
import { AF_UNIX, loadLibc, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM } from "./libc.ts";
import { RingOp, SubmissionRing } from "./uring.ts";
import { assertEquals } from "../../tests/support/assert.ts";

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
