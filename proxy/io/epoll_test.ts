/**
 * @module
 * Socket-level tests of the epoll network backend (io/epoll.ts), each run in both of its modes
 * (direct calls, and reads and writes batched through an io_uring), over loopback: binding, echo,
 * a large concurrent transfer (partial writes, EPOLLOUT), half-close, the errors Deno's own
 * sockets would give (refused, interrupted, bad resource, reset), many connections, mixing
 * with Deno's sockets, and `settled()`. Every test ends by waiting for the network to settle,
 * so a socket left open (or the poller's pending `epoll_wait`) fails the test instead of
 * leaking into the next one. Skipped where the backend cannot load (no FFI, not Linux).
 */
import { createEpollNetwork, lateRingCompletions, ringIdleWaits } from "./epoll.ts";
import {
  AF_INET,
  IPPROTO_TCP,
  loadLibc,
  localPort,
  SOCK_CLOEXEC,
  SOCK_STREAM,
  TCP_NODELAY,
  writeSockaddrIn,
} from "./libc.ts";
import { denoNetwork, type Network, type StreamConn, type StreamListener } from "./net.ts";
import {
  assert,
  assertEquals,
  assertGreater,
  assertLess,
  assertRejects,
  assertThrows,
} from "../../tests/support/assert.ts";
import { freePort, hasIpv6Loopback, settledWithin, writeAll } from "../../tests/support/sockets.ts";

type Mode = "epoll" | "uring";
const networks: Record<Mode, Network | null> = {
  epoll: createEpollNetwork("epoll"),
  uring: createEpollNetwork("uring"),
};
/** The network of the running test; only dereferenced inside tests of a mode that loaded. */
let network = networks.epoll as Network;
const loopback = { hostname: "127.0.0.1", port: 0 };
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Anything with a `close()`: epoll and Deno sockets and listeners. */
interface Closable {
  close(): void;
}

/** Closes what a test opened, even when it failed half-way; "already closed" is fine. */
class Opened {
  readonly #items: Closable[] = [];

  add<T extends Closable>(item: T): T {
    this.#items.push(item);
    return item;
  }

  closeAll(): void {
    for (const item of this.#items.splice(0).reverse()) {
      try {
        item.close();
      } catch {
        // Closed by the test itself.
      }
    }
  }
}

/**
 * A test of the epoll backend, registered once per mode: closes everything registered with
 * `opened` and then requires the network to settle (no socket open, poller stopped), so Deno's
 * op sanitizer stays on.
 */
function epollTest(
  name: string,
  fn: (opened: Opened) => Promise<void>,
  modes: readonly Mode[] = ["epoll", "uring"],
  ignore = false,
): void {
  for (const mode of modes) modeTest(mode, name, fn, ignore);
}

function modeTest(
  mode: Mode,
  name: string,
  fn: (opened: Opened) => Promise<void>,
  ignore = false,
): void {
  Deno.test({
    name: `${mode}: ${name}`,
    ignore: ignore || networks[mode] === null,
    async fn() {
      network = networks[mode]!;
      const opened = new Opened();
      try {
        await fn(opened);
      } catch (err) {
        opened.closeAll();
        // The failure is the interesting error; still give the sockets time to go away.
        await settledWithin(network, 3000);
        throw err;
      }
      opened.closeAll();
      if (!(await settledWithin(network, 3000))) {
        throw new Error("the epoll network did not settle in 3 s");
      }
      assertEquals(lateRingCompletions(), 0, "every ring operation completed in its submit");
    },
  });
}

/** Reads exactly `length` bytes; throws at an early end of stream. */
async function readExactly(conn: StreamConn, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const n = await conn.read(out.subarray(got));
    if (n === null) throw new Error(`end of stream after ${got} of ${length} bytes`);
    got += n;
  }
  return out;
}

async function readText(conn: StreamConn, length: number): Promise<string> {
  return decoder.decode(await readExactly(conn, length));
}

/** A connected pair over an epoll listener: `client` from `network.connect`, `server` accepted. */
async function epollPair(
  opened: Opened,
  listening: StreamListener = network.listen(loopback),
): Promise<{ listener: StreamListener; client: StreamConn; server: StreamConn }> {
  const listener = opened.add(listening);
  const [client, server] = await Promise.all([
    network.connect(listener.addr.hostname, listener.addr.port),
    listener.accept(),
  ]);
  opened.add(client);
  opened.add(server);
  return { listener, client, server };
}

const fnvOffset = 0x811c9dc5;

/** FNV-1a continued from `hash` over `bytes`: a running checksum of a byte stream. */
function fnv1a(hash: number, bytes: Uint8Array): number {
  let h = hash;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return h >>> 0;
}

/** Bytes to send: a pseudo-random block of prime length, repeated, so offsets never align. */
const patternPeriod = 65521;
const maxChunk = 1024 * 1024;
const pattern = (() => {
  const block = new Uint8Array(patternPeriod + maxChunk);
  let x = 0x2545f491;
  for (let i = 0; i < patternPeriod; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    block[i] = x & 0xff;
  }
  for (let i = patternPeriod; i < block.length; i++) block[i] = block[i - patternPeriod];
  return block;
})();

interface Sent {
  bytes: number;
  checksum: number;
  /** Writes that took less than offered: the socket buffer was full. */
  partialWrites: number;
}

/**
 * Sends `total` pattern bytes in writes of up to `chunk` (views into a shared buffer at odd
 * offsets), then half-closes. The checksum covers what each write reported as written.
 */
async function sendPattern(conn: StreamConn, total: number, chunk: number): Promise<Sent> {
  let sent = 0, checksum = fnvOffset, partialWrites = 0;
  for (let zeroWrites = 0; sent < total;) {
    const want = Math.min(chunk, total - sent);
    const start = sent % patternPeriod;
    const piece = pattern.subarray(start, start + want);
    const n = await conn.write(piece);
    if (n <= 0 && ++zeroWrites > 100) throw new Error("write keeps answering 0");
    if (n < want) partialWrites++;
    checksum = fnv1a(checksum, piece.subarray(0, n));
    sent += n;
  }
  await conn.closeWrite();
  return { bytes: sent, checksum, partialWrites };
}

/**
 * Reads until end of stream into a buffer that starts at an odd offset of its ArrayBuffer,
 * keeping only a count and a running checksum. Fails past `limit` bytes.
 */
async function receiveAll(
  conn: StreamConn,
  limit: number,
): Promise<{ bytes: number; checksum: number }> {
  const backing = new Uint8Array(64 * 1024 + 3);
  const buf = backing.subarray(3);
  let bytes = 0, checksum = fnvOffset;
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) return { bytes, checksum };
    bytes += n;
    if (bytes > limit) throw new Error(`received ${bytes} bytes, more than the ${limit} sent`);
    checksum = fnv1a(checksum, buf.subarray(0, n));
  }
}

/** Sends `total` bytes each way at once and checks both arrive intact. */
async function exchangeBothWays(
  a: StreamConn,
  b: StreamConn,
  total: number,
  chunk: number,
): Promise<number> {
  const [sentA, sentB, gotB, gotA] = await Promise.all([
    sendPattern(a, total, chunk),
    sendPattern(b, total, chunk),
    receiveAll(b, total),
    receiveAll(a, total),
  ]);
  assertEquals(gotB, { bytes: sentA.bytes, checksum: sentA.checksum }, "a -> b");
  assertEquals(gotA, { bytes: sentB.bytes, checksum: sentB.checksum }, "b -> a");
  assertEquals([sentA.bytes, sentB.bytes], [total, total]);
  return sentA.partialWrites + sentB.partialWrites;
}

/** `rounds` one-byte round trips from `client` through an echoing `server`; elapsed ms. */
async function roundTrips(client: StreamConn, server: StreamConn, rounds: number) {
  const echo = (async () => {
    for (let i = 0; i < rounds; i++) await writeAll(server, await readExactly(server, 1));
  })();
  const started = performance.now();
  for (let i = 0; i < rounds; i++) {
    await writeAll(client, new Uint8Array([i]));
    assertEquals((await readExactly(client, 1))[0], i);
  }
  const elapsed = performance.now() - started;
  await echo;
  return elapsed;
}

epollTest("listen on 127.0.0.1:0 reports the real port", async (opened) => {
  const listener = opened.add(network.listen(loopback));
  assertEquals(listener.addr.hostname, "127.0.0.1");
  assert(listener.addr.port > 0 && listener.addr.port < 65536, `port ${listener.addr.port}`);
  // The port is the bound one: Deno's own client reaches it, and a second bind is refused.
  const client = opened.add(await Deno.connect(listener.addr));
  const accepted = opened.add(await listener.accept());
  assertEquals(accepted.remoteAddr, {
    transport: "tcp",
    hostname: "127.0.0.1",
    port: client.localAddr.port,
  });
  assertThrows(() => network.listen(listener.addr), Deno.errors.AddrInUse);
});

epollTest("connect and echo in both directions", async (opened) => {
  const { client, server, listener } = await epollPair(opened);
  assertEquals(client.remoteAddr, {
    transport: "tcp",
    hostname: "127.0.0.1",
    port: listener.addr.port,
  });
  await writeAll(client, encoder.encode("ping from client"));
  assertEquals(await readText(server, 16), "ping from client");
  await writeAll(server, encoder.encode("pong from server"));
  assertEquals(await readText(client, 16), "pong from server");
  // Several writes coalesce or split freely; the byte stream stays in order.
  for (let i = 0; i < 10; i++) await writeAll(client, encoder.encode(`[${i}]`));
  assertEquals(await readText(server, 30), "[0][1][2][3][4][5][6][7][8][9]");
  const empty = await server.read(new Uint8Array(0));
  assertEquals(empty, 0, "an empty read answers 0, not end of stream");
  assertEquals(await client.write(new Uint8Array(0)), 0);
});

epollTest("an idle uring loop is woken through the ring, with no worker thread", async (o) => {
  const { client, server } = await epollPair(o);
  const before = ringIdleWaits();
  // The loop goes idle while the reply is held back; the write then has to wake it.
  const reply = new Promise<void>((resolve, reject) =>
    setTimeout(() => writeAll(server, encoder.encode("late")).then(resolve, reject), 30)
  );
  assertEquals(await readText(client, 4), "late");
  await reply;
  assert(ringIdleWaits() > before, "the idle wait went through the ring's watch");
}, ["uring"]);

epollTest("16 MiB each way at once arrives byte-exact (partial writes, EPOLLOUT)", async (o) => {
  const { client, server } = await epollPair(o);
  const partialWrites = await exchangeBothWays(client, server, 16 * 1024 * 1024, maxChunk);
  // 1 MiB writes outrun the loopback socket buffers, so `send` took less than offered and
  // the next write waited for EPOLLOUT; without that this test would not cover the path.
  assertGreater(partialWrites, 0, "no partial write happened");
});

epollTest("closeWrite delivers end of stream; the other direction still works", async (o) => {
  const { client, server } = await epollPair(o);
  await writeAll(client, encoder.encode("last words"));
  await client.closeWrite();
  assertEquals(await readText(server, 10), "last words");
  assertEquals(await server.read(new Uint8Array(16)), null);
  assertEquals(await server.read(new Uint8Array(16)), null, "end of stream is sticky");
  await assertRejects(() => client.write(encoder.encode("more")), Deno.errors.BrokenPipe);
  await writeAll(server, encoder.encode("still listening"));
  assertEquals(await readText(client, 15), "still listening");
  server.close();
  assertEquals(await client.read(new Uint8Array(16)), null);
});

epollTest("connect to a closed port rejects with ConnectionRefused", async () => {
  const port = freePort();
  await assertRejects(() => network.connect("127.0.0.1", port), Deno.errors.ConnectionRefused);
  // Twice: the failed socket was released and nothing stayed registered.
  await assertRejects(() => network.connect("127.0.0.1", port), Deno.errors.ConnectionRefused);
});

epollTest("close during a pending read or write rejects it with Interrupted", async (o) => {
  const { client, server } = await epollPair(o);
  const reading = server.read(new Uint8Array(16));
  server.close();
  await assertRejects(() => reading, Deno.errors.Interrupted);

  // Fill the socket buffers (nobody reads the other end) until a write is left waiting.
  const chunk = pattern.subarray(0, maxChunk);
  let partial = false;
  for (let i = 0; i < 256 && !partial; i++) partial = (await client.write(chunk)) < chunk.length;
  assert(partial, "the socket buffer never filled");
  const writing = client.write(chunk);
  client.close();
  await assertRejects(() => writing, Deno.errors.Interrupted);
});

epollTest("tryWrite sends at once when it can, and answers -1 when write must wait", async (o) => {
  const { client, server } = await epollPair(o);
  assertEquals(client.tryWrite!(encoder.encode("now")), 3);
  assertEquals(await readText(server, 3), "now");
  // Fill the socket buffers (nobody reads the other end) until the socket would block.
  const chunk = pattern.subarray(0, maxChunk);
  let sent = 0;
  for (let i = 0; i < 256 && sent >= 0; i++) sent = client.tryWrite!(chunk);
  assertEquals(sent, -1, "the socket buffer never filled");
  const writing = client.write(chunk);
  assertEquals(client.tryWrite!(chunk), -1, "a write is waiting");
  client.close();
  await assertRejects(() => writing, Deno.errors.Interrupted);
  assertEquals(client.tryWrite!(chunk), -1, "closed");
}, ["epoll"]);

epollTest("a write queued in a round and closed before its submit is withdrawn", async (o) => {
  const { client, server } = await epollPair(o);
  const third = o.add(network.listen(loopback));
  // The read waits for its edge, so it completes inside a round, where the write in its
  // continuation is only queued. The connect right after the close takes the lowest free fd
  // number, the closed one: a queued send left in the ring would go to that connection.
  let reconnect: Promise<StreamConn> | null = null;
  const writing = client.read(new Uint8Array(8)).then(() => {
    const write = client.write(encoder.encode("never sent"));
    client.close();
    reconnect = network.connect("127.0.0.1", third.addr.port);
    return write;
  });
  await writeAll(server, encoder.encode("go"));
  await assertRejects(() => writing, Deno.errors.Interrupted);
  assertEquals(await server.read(new Uint8Array(16)), null, "end of stream, no bytes");
  const [reused, accepted] = await Promise.all([reconnect!, third.accept()]);
  o.add(reused);
  o.add(accepted);
  await reused.closeWrite();
  assertEquals(await accepted.read(new Uint8Array(16)), null, "nothing reached the new socket");
}, ["uring"]);

epollTest("in uring mode tryWrite always defers to write, which the ring completes", async (o) => {
  const { client, server } = await epollPair(o);
  const bytes = encoder.encode("batched");
  assertEquals(client.tryWrite!(bytes), -1);
  assertEquals(await client.write(bytes), bytes.length);
  assertEquals(await readText(server, bytes.length), "batched");
}, ["uring"]);

/** Busy-waits `ms` (the test needs time to pass without yielding). */
function spin(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) { /* waiting */ }
}

epollTest("now() holds the round's start inside a round and reads the clock outside", async (o) => {
  const { client, server } = await epollPair(o);
  // A read completed by the poller runs its continuation inside a round.
  const reading = server.read(new Uint8Array(16)).then(() => {
    const first = network.now!();
    spin(5);
    return [first, network.now!()];
  });
  await writeAll(client, encoder.encode("tick"));
  const [first, second] = await reading;
  assertEquals(second, first, "one reading for the whole round");
  assert(performance.now() - first >= 5, "the reading is the round's start, not later");
  // A timer runs while the poller waits: the reading is fresh.
  const outside = await new Promise<[number, number]>((resolve) =>
    setTimeout(() => {
      const before = network.now!();
      spin(2);
      resolve([before, network.now!()]);
    }, 20)
  );
  assert(outside[1] - outside[0] >= 2, `fresh readings outside rounds: ${outside}`);
});

epollTest("read, write and closeWrite after close reject with BadResource", async (o) => {
  const { client } = await epollPair(o);
  client.close();
  await assertRejects(() => client.read(new Uint8Array(4)), Deno.errors.BadResource);
  await assertRejects(() => client.write(encoder.encode("x")), Deno.errors.BadResource);
  await assertRejects(() => client.closeWrite(), Deno.errors.BadResource);
  assertThrows(() => client.close(), Deno.errors.BadResource);
});

epollTest("closing a listener rejects a pending accept", async (o) => {
  const listener = o.add(network.listen(loopback));
  const accepting = listener.accept();
  listener.close();
  await assertRejects(() => accepting, Deno.errors.BadResource);
  await assertRejects(() => listener.accept(), Deno.errors.BadResource);
  assertThrows(() => listener.close(), Deno.errors.BadResource);
  // The port is free again for a new listener.
  const again = o.add(network.listen(listener.addr));
  assertEquals(again.addr.port, listener.addr.port);
});

epollTest("an accepted connection's remoteAddr is the client's address", async (o) => {
  const listener = o.add(network.listen(loopback));
  const clients = [
    o.add(await Deno.connect(listener.addr)),
    o.add(await Deno.connect(listener.addr)),
  ];
  for (const client of clients) {
    const accepted = o.add(await listener.accept());
    assertEquals(accepted.remoteAddr, {
      transport: "tcp",
      hostname: "127.0.0.1",
      port: client.localAddr.port,
    });
  }
});

epollTest("200 connections accepted concurrently are all served", async (o) => {
  const count = 200;
  const listener = o.add(network.listen(loopback));
  const serving = (async () => {
    const handlers: Promise<number>[] = [];
    for (let i = 0; i < count; i++) {
      const conn = o.add(await listener.accept());
      handlers.push((async () => {
        const id = new DataView((await readExactly(conn, 4)).buffer).getUint32(0);
        const reply = new Uint8Array(4);
        new DataView(reply.buffer).setUint32(0, id * 3);
        await writeAll(conn, reply);
        await conn.closeWrite();
        return (conn.remoteAddr as Deno.NetAddr).port;
      })());
    }
    return await Promise.all(handlers);
  })();
  const replies = await Promise.all(
    Array.from({ length: count }, async (_, id) => {
      const conn = o.add(await network.connect("127.0.0.1", listener.addr.port));
      const request = new Uint8Array(4);
      new DataView(request.buffer).setUint32(0, id);
      await writeAll(conn, request);
      const reply = new DataView((await readExactly(conn, 4)).buffer).getUint32(0);
      assertEquals(await conn.read(new Uint8Array(1)), null);
      conn.close();
      return reply;
    }),
  );
  assertEquals(replies, Array.from({ length: count }, (_, id) => id * 3));
  const ports = await serving;
  assertEquals(new Set(ports).size, count, "distinct client ports");
});

epollTest("Deno.connect client <-> epoll listener: 2 MiB each way", async (o) => {
  const listener = o.add(network.listen(loopback));
  const [client, server] = await Promise.all([Deno.connect(listener.addr), listener.accept()]);
  o.add(client);
  o.add(server);
  await exchangeBothWays(client, server, 2 * 1024 * 1024, 256 * 1024);
});

epollTest("epoll client <-> Deno.listen server: 2 MiB each way", async (o) => {
  const { client, server } = await epollPair(o, denoNetwork.listen(loopback));
  await exchangeBothWays(client, server, 2 * 1024 * 1024, 256 * 1024);
});

// The poller must leave the JS thread to the runtime whenever it has nothing to do, or a
// Deno socket's wake-up would wait for the poller (a 1 ms JS-thread wait followed by
// setImmediate, tried once, cost about 50 ms per round trip).
epollTest("a Deno socket talking to an epoll socket is not delayed", async (o) => {
  const rounds = 10;
  const epollListener = o.add(network.listen(loopback));
  const [denoClient, epollServer] = await Promise.all([
    Deno.connect(epollListener.addr),
    epollListener.accept(),
  ]);
  o.add(denoClient);
  o.add(epollServer);
  const denoToEpoll = await roundTrips(denoClient, epollServer, rounds);

  const denoListener = o.add(Deno.listen(loopback));
  const [epollClient, denoServer] = await Promise.all([
    network.connect("127.0.0.1", denoListener.addr.port),
    denoListener.accept(),
  ]);
  o.add(epollClient);
  o.add(denoServer);
  const epollToDeno = await roundTrips(epollClient, denoServer, rounds);
  // 25 ms per round trip is far above loopback latency even on a loaded machine.
  assertLess(denoToEpoll, rounds * 25, `Deno client: ${denoToEpoll.toFixed(0)} ms`);
  assertLess(epollToDeno, rounds * 25, `Deno server: ${epollToDeno.toFixed(0)} ms`);
});

// Under sustained epoll traffic the runtime still polls its own sockets: the poller parks it
// on timed turns, and a pump whose sockets stay ready is deferred to the next round after a
// budget of synchronous operations. With this in-process pump (both ends always ready) a Deno
// round trip still takes up to a few hundred ms (measured 0.2-0.65 s for all five), so the
// bound is progress, not latency: a setImmediate turn, tried once, gave 0.6-2.7 s per round
// trip.
epollTest("sustained epoll traffic does not starve Deno's own sockets", async (o) => {
  const { client, server } = await epollPair(o);
  let busy = true;
  const chunk = pattern.subarray(0, 16 * 1024);
  const pumping = (async () => {
    while (busy) await client.write(chunk);
    await client.closeWrite();
  })();
  const draining = receiveAll(server, Number.MAX_SAFE_INTEGER);

  const denoListener = o.add(Deno.listen(loopback));
  const [denoClient, denoServer] = await Promise.all([
    Deno.connect({ ...loopback, port: denoListener.addr.port }),
    denoListener.accept(),
  ]);
  o.add(denoClient);
  o.add(denoServer);
  const rounds = 5;
  let done = 0;
  const started = performance.now();
  try {
    const echo = (async () => {
      for (let i = 0; i < rounds; i++) await writeAll(denoServer, await readExactly(denoServer, 1));
    })();
    const trips = (async () => {
      for (; done < rounds; done++) {
        await writeAll(denoClient, new Uint8Array([done]));
        await readExactly(denoClient, 1);
      }
    })();
    // Bounded in time as well as count, so the failing case stays short.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finished = await Promise.race([
      trips.then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), 5000))),
    ]);
    clearTimeout(timer);
    if (!finished) {
      denoClient.close(); // fails the pending reads, ending both loops
      denoServer.close();
    }
    await Promise.allSettled([trips, echo]);
  } finally {
    busy = false;
    await pumping;
    await draining;
  }
  const elapsed = performance.now() - started;
  assertEquals(done, rounds, `only ${done} Deno round trips in ${elapsed.toFixed(0)} ms`);
  assertLess(elapsed, rounds * 1000, `${rounds} Deno round trips took ${elapsed.toFixed(0)} ms`);
});

epollTest("settled() resolves once every socket is closed, not before", async (o) => {
  const { client, server, listener } = await epollPair(o);
  let settled = false;
  const settling = network.settled().then(() => (settled = true));
  await writeAll(client, encoder.encode("x"));
  await readExactly(server, 1);
  client.close();
  server.close();
  // A few turns of the event loop (timers run after I/O) with the listener still open.
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setTimeout(resolve, 0));
  assert(!settled, "settled while a listener is open");
  listener.close();
  assert(await settledWithin(network, 3000), "not settled after the last close");
  await settling;
  assert(settled);
  // Usable again afterwards: the poller restarts with the next socket.
  const again = await epollPair(o);
  await writeAll(again.client, encoder.encode("y"));
  assertEquals(await readText(again.server, 1), "y");
});

epollTest("a reset peer fails a pending read, then writes (reset or broken pipe)", async (o) => {
  const { client, server } = await epollPair(o);
  await writeAll(server, encoder.encode("ab"));
  // Reading one of the two bytes proves they arrived; closing with one unread sends RST.
  assertEquals(await client.read(new Uint8Array(1)), 1);
  const reading = server.read(new Uint8Array(16));
  client.close();
  await assertRejects(() => reading, Deno.errors.ConnectionReset);
  let error: unknown;
  for (let i = 0; i < 1000 && error === undefined; i++) {
    try {
      await server.write(pattern.subarray(0, 64 * 1024));
    } catch (err) {
      error = err;
    }
  }
  assert(
    error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.BrokenPipe,
    `expected ConnectionReset or BrokenPipe, got ${error}`,
  );
});

/**
 * A listening socket (made through libc: Deno's listen has no backlog option) with backlog 0
 * whose accept queue already holds one connection: the kernel drops further SYNs, so a
 * connect to it stays in progress until the listener closes (then the next SYN retransmit,
 * about 1 s later, is refused).
 */
async function synDroppingListener(o: Opened): Promise<{ port: number; close(): void }> {
  const libc = loadLibc()!;
  const fd = libc.sym.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert(fd >= 0, "socket");
  const sa = new Uint8Array(16);
  writeSockaddrIn(sa, [127, 0, 0, 1], 0);
  const port = libc.sym.bind(fd, sa, 16) === 0 && libc.sym.listen(fd, 0) === 0
    ? localPort(libc, fd)
    : -1;
  if (port < 0) {
    libc.sym.close(fd);
    throw new Error(`cannot set up the listener: errno ${libc.errno()}`);
  }
  const queued = o.add(await Deno.connect({ hostname: "127.0.0.1", port }));
  let closed = false;
  return {
    port,
    // Idempotent: a raw descriptor closed twice could be another test's by then (the test
    // process shares one descriptor table), which once broke child-process exits elsewhere.
    close() {
      if (closed) return;
      closed = true;
      libc.sym.close(fd);
      queued.close();
    },
  };
}

// Reproduces a stale-event race: an event for file descriptor N collected by the poller's
// parked epoll_wait (worker thread) is dispatched after N was closed and reused by a new
// connect; the pending connect takes the old socket's EPOLLOUT for its own and, since SO_ERROR
// is 0 while a handshake is in progress, resolves although the handshake never completed.
epollTest("a connect still in progress does not resolve on a stale event", async (o) => {
  const libc = loadLibc()!;
  const dropping = await synDroppingListener(o);
  o.add(dropping);
  const { client, server } = await epollPair(o);
  const clientFd = (client as unknown as { fd?: number }).fd;
  assert(typeof clientFd === "number", "EpollConn exposes its fd");
  // Quiet, so the poller's wait is parked on a worker thread.
  await new Promise((resolve) => setTimeout(resolve, 200));

  // One synchronous block, so nothing else runs in between:
  // 1. a byte for `client`: the parked wait collects an event for clientFd and returns;
  const wrote = server.write(encoder.encode("!")); // a synchronous send; awaited below
  const spinUntil = performance.now() + 30;
  while (performance.now() < spinUntil) {
    // 2. give the worker thread time to hand the event back (it runs in parallel).
  }
  // 3. take every free descriptor below clientFd, so closing it makes it the lowest free one;
  const fillers: number[] = [];
  for (let i = 0; i < 100_000; i++) {
    const fd = libc.sym.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) break;
    fillers.push(fd);
    if (fd > clientFd) break;
  }
  // 4. close it and connect somewhere the handshake cannot finish: the new socket gets clientFd.
  client.close();
  const connecting = network.connect("127.0.0.1", dropping.port);
  for (const fd of fillers) libc.sym.close(fd);

  const outcome = await Promise.race([
    connecting.then((conn) => {
      o.add(conn);
      return "resolved";
    }, (err) => `rejected: ${err}`),
    new Promise<string>((resolve) => setTimeout(() => resolve("pending"), 300)),
  ]);
  assertEquals(await wrote, 1);
  // Clean up either way: closing the listener makes the next SYN retransmit get a RST.
  dropping.close();
  if (outcome === "pending") {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ended = await Promise.race([
      connecting.then(() => "resolved", (err) => err),
      new Promise<string>((resolve) => (timer = setTimeout(() => resolve("still pending"), 5000))),
    ]);
    clearTimeout(timer);
    assert(ended instanceof Deno.errors.ConnectionRefused, `after the listener closed: ${ended}`);
  }
  assertEquals(outcome, "pending", "connect resolved before its handshake completed");
});

epollTest("an aborted connect fails with TimedOut and frees its socket", async (o) => {
  const dropping = await synDroppingListener(o);
  o.add(dropping);
  const abort = new AbortController();
  const connecting = network.connect("127.0.0.1", dropping.port, abort.signal);
  let outcome = "pending";
  connecting.then(() => (outcome = "resolved"), () => (outcome = "rejected"));
  await new Promise((resolve) => setTimeout(resolve, 50));
  assertEquals(outcome, "pending", "the handshake cannot complete");
  abort.abort();
  await assertRejects(() => connecting, Deno.errors.TimedOut);
  await assertRejects(
    () => network.connect("127.0.0.1", dropping.port, abort.signal),
    Deno.errors.TimedOut,
  );
  // The epollTest wrapper then requires the network to settle: no socket left behind.
});

epollTest("timers fire while epoll traffic keeps the poller busy", async (o) => {
  const { client, server } = await epollPair(o);
  let busy = true;
  const chunk = pattern.subarray(0, 16 * 1024);
  // Bounded in time too: without runtime turns the timer below would wait for the pump.
  const stopAt = performance.now() + 2000;
  const pumping = (async () => {
    while (busy && performance.now() < stopAt) await client.write(chunk);
    await client.closeWrite();
  })();
  const draining = receiveAll(server, Number.MAX_SAFE_INTEGER);
  try {
    // The pump starts at once (its first writes complete synchronously); time a short timer
    // set while it runs.
    const started = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 10));
    const late = performance.now() - started - 10;
    // The poller gives the runtime a turn at least every 20 ms; allow for a loaded machine.
    assertLess(late, 200, `a 10 ms timer fired ${late.toFixed(0)} ms late`);
  } finally {
    busy = false;
    await pumping;
    await draining;
  }
});

/** The socket's TCP_NODELAY, read back from the kernel. */
function noDelayOf(conn: StreamConn): number {
  const libc = loadLibc()!;
  const fd = (conn as unknown as { fd?: number }).fd;
  assert(typeof fd === "number", "EpollConn exposes its fd");
  const value = new Int32Array(1);
  const length = new Uint32Array([4]);
  const ok = libc.sym.getsockopt(
    fd,
    IPPROTO_TCP,
    TCP_NODELAY,
    new Uint8Array(value.buffer),
    new Uint8Array(length.buffer),
  );
  assertEquals(ok, 0, "getsockopt");
  return value[0];
}

// The listener sets TCP_NODELAY once and accepted sockets inherit it, so the proxy's
// per-connection setNoDelay(true) is no system call; the state it keeps must still let a later
// change through.
epollTest("accepted sockets have TCP_NODELAY from the listener; changes still apply", async (o) => {
  const { client, server } = await epollPair(o);
  assertEquals(noDelayOf(server) !== 0, true, "accepted socket inherits TCP_NODELAY");
  server.setNoDelay(false);
  assertEquals(noDelayOf(server), 0);
  server.setNoDelay(true);
  assert(noDelayOf(server) !== 0);
  assertEquals(noDelayOf(client), 0, "a connected socket starts without it");
  client.setNoDelay(true);
  assert(noDelayOf(client) !== 0);
});

// IPv6 literals take the same path as IPv4 ones (not Deno's sockets): a listener on ::1, a
// connection to it, bytes both ways, and the peer written as Deno writes it.
epollTest(
  "IPv6 loopback: listen, connect, echo, peer address",
  async (o) => {
    const { listener, client, server } = await epollPair(
      o,
      network.listen({ hostname: "::1", port: 0 }),
    );
    assertEquals(listener.addr.hostname, "::1");
    assertGreater(listener.addr.port, 0);
    assertEquals(typeof (client as unknown as { fd?: number }).fd, "number", "an epoll socket");
    assertEquals(typeof (server as unknown as { fd?: number }).fd, "number", "an epoll socket");
    assertEquals((server.remoteAddr as Deno.NetAddr).hostname, "::1");
    await writeAll(client, encoder.encode("ping6"));
    assertEquals(new TextDecoder().decode(await readExactly(server, 5)), "ping6");
    await writeAll(server, encoder.encode("pong6"));
    assertEquals(new TextDecoder().decode(await readExactly(client, 5)), "pong6");
    assert(noDelayOf(server) !== 0, "TCP_NODELAY inherited on IPv6 too");
  },
  ["epoll", "uring"],
  !hasIpv6Loopback,
);

// A listener on "::" takes IPv4 clients too (the kernel's default), and names them as Deno does.
epollTest(
  "a dual-stack listener names an IPv4 peer ::ffff:a.b.c.d",
  async (o) => {
    const listener = o.add(network.listen({ hostname: "::", port: 0 }));
    const client = o.add(await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }));
    const server = o.add(await listener.accept());
    assertEquals((server.remoteAddr as Deno.NetAddr).hostname, "::ffff:127.0.0.1");
    assertEquals((server.remoteAddr as Deno.NetAddr).port, (client.localAddr as Deno.NetAddr).port);
  },
  ["epoll", "uring"],
  !hasIpv6Loopback,
);
