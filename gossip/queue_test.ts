/**
 * @module
 * Retransmit bounds and ordering of the broadcast queue.
 */
import { assertEquals } from "../tests/support/assert.ts";
import { BroadcastQueue, retransmitLimit } from "./queue.ts";

Deno.test("retransmit limit follows mult * ceil(log10(n + 1))", () => {
  assertEquals(retransmitLimit(4, 1), 4);
  assertEquals(retransmitLimit(4, 9), 4);
  assertEquals(retransmitLimit(4, 10), 8);
  assertEquals(retransmitLimit(4, 100), 12);
});

Deno.test("each update is sent exactly the retransmit limit times", () => {
  let n = 10;
  const q = new BroadcastQueue(4, () => n);
  q.enqueue("a", new Uint8Array(10));
  let sent = 0;
  for (let i = 0; i < 100 && q.length > 0; i++) sent += q.take(2, 1400).length;
  assertEquals(sent, 8);
  n = 1000;
  q.enqueue("b", new Uint8Array(10));
  sent = 0;
  for (let i = 0; i < 100 && q.length > 0; i++) sent += q.take(2, 1400).length;
  assertEquals(sent, 16);
});

Deno.test("newer updates replace older ones; fewest-sent first; size limit respected", () => {
  const q = new BroadcastQueue(4, () => 10);
  q.enqueue("a", new Uint8Array([1]));
  q.take(0, 100);
  q.enqueue("a", new Uint8Array([2]));
  assertEquals(q.length, 1);
  assertEquals(q.take(0, 100), [new Uint8Array([2])]);
  q.enqueue("b", new Uint8Array(50));
  q.enqueue("c", new Uint8Array(60));
  // Fresh items (0 sends) go first, newest first; "a" (1 send) no longer fits.
  const got = q.take(0, 110);
  assertEquals(got.map((b) => b.length), [60, 50]);
  assertEquals(q.transmitsOf("a"), 1);
});
