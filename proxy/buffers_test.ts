/**
 * @module
 * BufferPool: a given-back buffer is the next one taken, only whole buffers of the pool's size
 * are kept, and no more than the limit.
 */
import { BufferPool } from "./buffers.ts";
import { assert, assertEquals } from "../tests/support/assert.ts";

Deno.test("a buffer given back is taken again instead of a new one", () => {
  const pool = new BufferPool(1024, 4);
  const a = pool.take();
  assertEquals(a.length, 1024);
  a[0] = 7;
  pool.give(a);
  assertEquals(pool.idle, 1);
  const b = pool.take();
  assert(b === a, "the returned buffer is reused");
  assertEquals(pool.idle, 0);
  assert(pool.take() !== a, "an empty pool allocates");
});

Deno.test("views, grown or foreign buffers are not kept", () => {
  const pool = new BufferPool(1024, 4);
  pool.give(new Uint8Array(2048));
  pool.give(new Uint8Array(2048).subarray(0, 1024));
  pool.give(new Uint8Array(2048).subarray(1024));
  assertEquals(pool.idle, 0);
});

Deno.test("at most `limit` buffers are kept idle", () => {
  const pool = new BufferPool(64, 3);
  const taken = Array.from({ length: 5 }, () => pool.take());
  for (const b of taken) pool.give(b);
  assertEquals(pool.idle, 3);
});
