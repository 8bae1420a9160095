/**
 * @module
 * Upstream keep-alive pools without sockets: a {@linkcode Network} whose connections are plain
 * objects, under a {@linkcode FakeClock}. Guards the reuse order: the most recently returned
 * idle connection is handed out first (last-in first-out), so a pool with more idle
 * connections than its traffic needs keeps reusing the warm ones and lets the rest reach the
 * idle timeout and be swept, instead of keeping every one of them barely alive.
 */
import { assert, assertEquals } from "../tests/support/assert.ts";
import { CounterChild, FakeClock } from "../lib/mod.ts";
import type { Network, StreamConn } from "./io/net.ts";
import { EndpointPool, PoolManager, type UpstreamConnection } from "./pool.ts";

/** A connection that never carries bytes; it only records whether it was closed. */
class InertConn implements StreamConn {
  closed = false;
  readonly remoteAddr: Deno.Addr;

  constructor(readonly id: number, hostname: string, port: number) {
    this.remoteAddr = { transport: "tcp", hostname, port };
  }

  read(): Promise<number | null> {
    return Promise.resolve(null);
  }
  write(p: Uint8Array): Promise<number> {
    return Promise.resolve(p.length);
  }
  closeWrite(): Promise<void> {
    return Promise.resolve();
  }
  close(): void {
    if (this.closed) throw new Deno.errors.BadResource("already closed");
    this.closed = true;
  }
  setNoDelay(): void {}
}

/** A network whose `connect` hands out numbered {@linkcode InertConn}s (1, 2, ...). */
class InertNetwork implements Network {
  readonly name = "inert";
  readonly opened: InertConn[] = [];

  listen(): never {
    throw new Error("the pool only connects");
  }
  connect(hostname: string, port: number): Promise<StreamConn> {
    const conn = new InertConn(this.opened.length + 1, hostname, port);
    this.opened.push(conn);
    return Promise.resolve(conn);
  }
  settled(): Promise<void> {
    return Promise.resolve();
  }
}

const maxIdle = 8;

function idOf(c: UpstreamConnection | null): number | null {
  return c === null ? null : (c.conn as InertConn).id;
}

function newPool(clock = new FakeClock()) {
  const network = new InertNetwork();
  const opened = new CounterChild();
  const pool = new EndpointPool("10.0.0.1:80", "10.0.0.1", 80, clock, opened, network);
  return { pool, network, opened, clock };
}

Deno.test("the most recently released idle connection is reused first", async () => {
  const { pool, opened } = newPool();
  const [a, b, c] = [await pool.connect(0), await pool.connect(0), await pool.connect(0)];
  assertEquals(opened.value, 3);
  assertEquals(pool.leased, 3);
  pool.release(a, true, maxIdle);
  pool.release(b, true, maxIdle);
  pool.release(c, true, maxIdle);
  assertEquals([pool.idleCount, pool.leased], [3, 0]);
  // Last in, first out: c, then b, then a; then the pool is empty.
  assertEquals(
    [pool.takeIdle(), pool.takeIdle(), pool.takeIdle(), pool.takeIdle()].map(idOf),
    [3, 2, 1, null],
  );
  assertEquals(pool.leased, 3);
});

Deno.test("a connection released again goes back on top of the idle stack", async () => {
  const { pool } = newPool();
  const [a, b] = [await pool.connect(0), await pool.connect(0)];
  pool.release(a, true, maxIdle);
  pool.release(b, true, maxIdle);
  const warm = pool.takeIdle()!;
  assertEquals(idOf(warm), 2);
  pool.release(warm, true, maxIdle);
  assertEquals(idOf(pool.takeIdle()), 2, "b again, not a, which has been idle longer");
});

Deno.test("idle connections beyond what traffic needs age out under steady reuse", async () => {
  const clock = new FakeClock();
  const network = new InertNetwork();
  const idleTimeoutMs = 30_000;
  const manager = new PoolManager(clock, () => new CounterChild(), network);
  manager.startSweeper(idleTimeoutMs);
  try {
    const pool = manager.pool("10.0.0.1:80", "10.0.0.1", 80);
    // A burst left three connections idle; then one request at a time, every 10 s, which
    // needs one connection. The reused one stays warm; the other two pass the idle timeout.
    const burst = [await pool.connect(0), await pool.connect(0), await pool.connect(0)];
    for (const c of burst) pool.release(c, true, maxIdle);
    const used = new Set<number>();
    for (let i = 0; i < 10; i++) {
      clock.advance(10_000);
      const c = pool.takeIdle();
      assert(c !== null, `request ${i} found no idle connection`);
      used.add(idOf(c)!);
      pool.release(c, true, maxIdle);
    }
    assertEquals([...used], [3], "every request reused the warmest connection");
    assertEquals(network.opened.map((c) => c.closed), [true, true, false]);
    assertEquals(pool.idleCount, 1);
  } finally {
    manager.close();
  }
  assert(network.opened.every((c) => c.closed), "closing the manager closes idle connections");
});

Deno.test("sweep closes the connections idle for the timeout and keeps the younger ones", async () => {
  const { pool, network, clock } = newPool();
  const [a, b, c] = [await pool.connect(0), await pool.connect(0), await pool.connect(0)];
  pool.release(a, true, maxIdle);
  clock.advance(1000);
  pool.release(b, true, maxIdle);
  clock.advance(1000);
  pool.release(c, true, maxIdle);
  pool.sweep(clock.now(), 1500);
  assertEquals(network.opened.map((x) => x.closed), [true, false, false]);
  assertEquals([pool.takeIdle(), pool.takeIdle(), pool.takeIdle()].map(idOf), [3, 2, null]);
});

Deno.test("takeIdle skips connections closed while idle; release closes what it cannot keep", async () => {
  const { pool, network } = newPool();
  const [a, b, c] = [await pool.connect(0), await pool.connect(0), await pool.connect(0)];
  pool.release(a, true, maxIdle);
  pool.release(b, true, maxIdle);
  b.close(); // the peer closed it while it sat in the pool
  assertEquals(idOf(pool.takeIdle()), 1);
  pool.release(c, false, maxIdle);
  assert(network.opened[2].closed, "a connection that is not reusable is closed on release");
  const d = await pool.connect(0);
  pool.release(d, true, 0);
  assert(network.opened[3].closed, "a full pool closes the connection instead of keeping it");
  assertEquals(pool.idleCount, 0);
});
