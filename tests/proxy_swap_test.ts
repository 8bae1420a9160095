/**
 * @module
 * Snapshot swaps: requests keep succeeding while update() runs repeatedly under load, a
 * request in flight finishes on the snapshot it started with, and pools and balancer state
 * carry over a swap that keeps them.
 */
import { Registry, silentLogger } from "../lib/mod.ts";
import { Proxy } from "../proxy/mod.ts";
import {
  buildSnapshot,
  endpoint,
  startRawUpstream,
  startUpstream,
  TestClient,
} from "./support/proxy.ts";

function assertEquals<T>(actual: T, expected: T, what = ""): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what ? what + ": " : ""}expected ${e}, got ${a}`);
}

const loopback = { hostname: "127.0.0.1", port: 0 };

Deno.test("snapshot swaps under load fail no request", async () => {
  const ups = await Promise.all([startUpstream(), startUpstream(), startUpstream()]);
  const eps = ups.map((u) => endpoint(u.addr));
  const snapshots = [
    buildSnapshot({ version: 1, outbound: { svc: { endpoints: [eps[0], eps[1]] } } }),
    buildSnapshot({ version: 2, outbound: { svc: { endpoints: [eps[1], eps[2]] } } }),
    buildSnapshot({ version: 3, outbound: { svc: { endpoints: [eps[2], eps[0]] } } }),
  ];
  const proxy = new Proxy({
    snapshot: snapshots[0],
    logger: silentLogger,
    metrics: new Registry(),
  });
  const { outbound } = await proxy.start({ outbound: loopback, inbound: loopback });
  let running = true;
  let ok = 0;
  const failures: string[] = [];
  const worker = async () => {
    const client = await TestClient.connect(outbound);
    try {
      for (let i = 0; running && i < 100_000; i++) {
        const r = await client.request("GET / HTTP/1.1\nHost: svc");
        if (r.status === 200) ok++;
        else failures.push(`${r.status} ${r.body}`);
      }
    } catch (err) {
      failures.push(String(err));
    } finally {
      client.close();
    }
  };
  try {
    const workers = Array.from({ length: 8 }, worker);
    const deadline = performance.now() + 1500;
    let swaps = 0;
    while (performance.now() < deadline) {
      proxy.update(snapshots[swaps++ % 3]);
      await new Promise((r) => setTimeout(r, 5));
    }
    running = false;
    await Promise.all(workers);
    assertEquals(failures.slice(0, 3), [], "failed requests");
    if (ok < 100 || swaps < 20) throw new Error(`too little load: ${ok} requests, ${swaps} swaps`);
  } finally {
    running = false;
    await proxy.stop();
    await Promise.all(ups.map((u) => u.close()));
  }
});

Deno.test("a request in flight finishes on the snapshot it started with", async () => {
  let release = () => {};
  const gate = new Promise<void>((r) => (release = r));
  let arrived = () => {};
  const arrival = new Promise<void>((r) => (arrived = r));
  const up = await startUpstream(async () => {
    arrived();
    await gate;
    return new Response("late but fine");
  });
  const before = buildSnapshot({
    version: 1,
    outbound: { svc: { endpoints: [endpoint(up.addr)] } },
  });
  const proxy = new Proxy({ snapshot: before, logger: silentLogger, metrics: new Registry() });
  const { outbound } = await proxy.start({ outbound: loopback, inbound: loopback });
  const client = await TestClient.connect(outbound);
  try {
    const pending = client.request("GET / HTTP/1.1\nHost: svc");
    await arrival;
    proxy.update(buildSnapshot({ version: 2 }));
    assertEquals(proxy.current().version, 2);
    release();
    const r = await pending;
    assertEquals([r.status, r.body], [200, "late but fine"]);
    const after = await client.request("GET / HTTP/1.1\nHost: svc");
    assertEquals(after.status, 404, "new requests use the new snapshot");
  } finally {
    client.close();
    await proxy.stop();
    await up.close();
  }
});

Deno.test("a swap keeps warm connections and the round-robin position", async () => {
  const a = startRawUpstream(() => "HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na");
  const b = startRawUpstream(() => "HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nb");
  const eps = [endpoint(a.addr), endpoint(b.addr)];
  const proxy = new Proxy({
    snapshot: buildSnapshot({ version: 1, outbound: { svc: { endpoints: eps } } }),
    logger: silentLogger,
    metrics: new Registry(),
  });
  const { outbound } = await proxy.start({ outbound: loopback, inbound: loopback });
  const client = await TestClient.connect(outbound);
  try {
    const seen: string[] = [];
    seen.push((await client.request("GET / HTTP/1.1\nHost: svc")).body);
    seen.push((await client.request("GET / HTTP/1.1\nHost: svc")).body);
    seen.push((await client.request("GET / HTTP/1.1\nHost: svc")).body);
    // Same endpoints, new snapshot objects: the rotation continues where it was.
    proxy.update(
      buildSnapshot({ version: 2, outbound: { svc: { endpoints: eps.map((e) => ({ ...e })) } } }),
    );
    seen.push((await client.request("GET / HTTP/1.1\nHost: svc")).body);
    seen.push((await client.request("GET / HTTP/1.1\nHost: svc")).body);
    assertEquals(seen, ["a", "b", "a", "b", "a"]);
    assertEquals([a.connections, b.connections], [1, 1], "connections per upstream");
  } finally {
    client.close();
    await proxy.stop();
    await a.close();
    await b.close();
  }
});

/**
 * An upstream that holds each request until `release()`, then answers `body`; `arrival`
 * resolves when the first request reached it.
 */
async function heldUpstream(body: string) {
  let release = () => {};
  const gate = new Promise<void>((r) => (release = r));
  let arrived = () => {};
  const arrival = new Promise<void>((r) => (arrived = r));
  const up = await startUpstream(async () => {
    arrived();
    await gate;
    return new Response(body);
  });
  return { up, arrival, release };
}

Deno.test("stop drains a request in flight, then refuses new connections", async () => {
  const { up, arrival, release } = await heldUpstream("drained");
  const proxy = new Proxy({
    snapshot: buildSnapshot({ outbound: { svc: { endpoints: [endpoint(up.addr)] } } }),
    logger: silentLogger,
    metrics: new Registry(),
  });
  const { outbound } = await proxy.start({ outbound: loopback, inbound: loopback });
  const busy = await TestClient.connect(outbound);
  const idle = await TestClient.connect(outbound);
  try {
    const pending = busy.request("GET / HTTP/1.1\nHost: svc");
    await arrival;
    const stopping = proxy.stop(5000);
    // The idle connection is closed at once; the busy one gets its answer, then closes.
    assertEquals(await idle.closedByPeer(), true, "idle connection closed");
    release();
    const r = await pending;
    assertEquals([r.status, r.body, r.headers.get("connection")], [200, "drained", "close"]);
    await stopping;
    let refused = false;
    try {
      (await Deno.connect(outbound)).close();
    } catch {
      refused = true;
    }
    assertEquals(refused, true, "listener closed");
  } finally {
    busy.close();
    idle.close();
    release();
    await proxy.stop();
    await up.close();
  }
});

Deno.test("stop ends a request whose upstream never answers once the drain timeout passes", async () => {
  const { up, arrival, release } = await heldUpstream("too late");
  const proxy = new Proxy({
    // The route timeout (60 s) is far beyond the drain timeout (50 ms) and the test's patience.
    snapshot: buildSnapshot({
      outbound: { svc: { endpoints: [endpoint(up.addr)] } },
      tuning: { routeTimeoutMs: 60_000 },
    }),
    logger: silentLogger,
    metrics: new Registry(),
  });
  const { outbound } = await proxy.start({ outbound: loopback, inbound: loopback });
  const client = await TestClient.connect(outbound);
  let patience: ReturnType<typeof setTimeout> | undefined;
  try {
    const pending = client.request("GET / HTTP/1.1\nHost: svc").catch(() => null);
    await arrival;
    const stopped = proxy.stop(50).then(() => "stopped");
    const stuck = new Promise<string>((r) => (patience = setTimeout(() => r("stuck"), 10_000)));
    assertEquals(await Promise.race([stopped, stuck]), "stopped", "stop after the drain timeout");
    const answer = await pending;
    assertEquals(answer === null || answer.status !== 200, true, "no upstream answer relayed");
  } finally {
    clearTimeout(patience);
    client.close();
    release();
    await proxy.stop();
    await up.close();
  }
});
