/**
 * @module
 * Outlier detection and circuit breakers end to end, through an in-process proxy over real
 * loopback sockets: a failing endpoint stops receiving traffic and comes back after its
 * ejection time; concurrency limits answer 503 UO; `maxRequestsPerConnection` retires
 * connections.
 */
import { assert, assertEquals, eventually } from "./support/assert.ts";
import { within } from "./support/time_guard.ts";
import {
  type CircuitBreakerConfig,
  type Clock,
  type ClusterConfig,
  FakeClock,
  type OutlierDetectionConfig,
  Registry,
  silentLogger,
  type Snapshot,
  type VirtualHostConfig,
} from "../lib/mod.ts";
import { Proxy } from "../proxy/mod.ts";
import {
  buildSnapshot,
  endpoint,
  oneRequest,
  startRawUpstream,
  startUpstream,
  TestClient,
  type TestUpstream,
} from "./support/proxy.ts";

const loopback = { hostname: "127.0.0.1", port: 0 };

const noLimits: CircuitBreakerConfig = {
  maxConnections: 0,
  maxPendingRequests: 0,
  maxRequests: 0,
  maxRetries: 0,
  maxRequestsPerConnection: 0,
};

/** A snapshot with one outbound service `svc` whose cluster carries the given policies. */
function snapshotWith(
  upstreams: { hostname: string; port: number }[],
  policy: Pick<ClusterConfig, "outlierDetection" | "circuitBreaker">,
  timeoutMs?: number,
): Snapshot {
  const snap = buildSnapshot({
    outbound: { svc: { endpoints: upstreams.map((u) => endpoint(u)), timeoutMs } },
  });
  const clusters = snap.clusters as Map<string, ClusterConfig>;
  clusters.set("outbound|svc", { ...clusters.get("outbound|svc")!, ...policy });
  return snap;
}

/** Starts a proxy on ephemeral ports; with `clock`, ejection times run on it. */
async function startProxy(snapshot: Snapshot, clock?: Clock) {
  const metrics = new Registry();
  const proxy = new Proxy({ snapshot, logger: silentLogger, metrics, clock });
  const addrs = await proxy.start({ outbound: loopback, inbound: loopback });
  return { proxy, metrics, ...addrs };
}

const request = "GET / HTTP/1.1\nHost: svc";

Deno.test("a failing endpoint is ejected after consecutive 5xx and returns after the ejection time", async () => {
  const good = [await startUpstream(), await startUpstream()];
  const bad = await startUpstream(() => new Response("down", { status: 503 }));
  const outlierDetection: OutlierDetectionConfig = {
    consecutive5xxErrors: 3,
    consecutiveGatewayErrors: 0,
    splitExternalLocalOriginErrors: false,
    consecutiveLocalOriginFailures: 5,
    intervalMs: 10_000,
    baseEjectionTimeMs: 200,
    maxEjectionTimeMs: 300_000,
    // One of three is 33%: allowed (Istio's default 10% would forbid any ejection here).
    maxEjectionPercent: 50,
    minHealthPercent: 0,
  };
  // Ejection times run on the proxy's clock: the endpoint stays out for exactly
  // baseEjectionTimeMs of fake time after its third 503, however long the requests take.
  const clock = new FakeClock();
  const p = await startProxy(
    snapshotWith([...good, bad].map((u) => u.addr), { outlierDetection }),
    clock,
  );
  const client = await TestClient.connect(p.outbound);
  try {
    // Round robin over three: the bad endpoint answers every third request until its third 503.
    let failures = 0;
    for (let i = 0; i < 9; i++) {
      const r = await client.request(request);
      if (r.status === 503) {
        failures++;
        assertEquals(r.body, "down", "the upstream's own answer is relayed");
      }
    }
    assertEquals(failures, 3);
    assert(
      /weft_outlier_ejected_endpoints\{[^}]*\} 1/.test(p.metrics.render()),
      "the ejection is visible in metrics",
    );
    const seenByBad = bad.requests.length;
    for (let i = 0; i < 10; i++) {
      const r = await client.request(request);
      assertEquals(r.status, 200, "ejected: only the healthy endpoints answer");
    }
    // 1 ms before the ejection ends (it began at fake time 0): still out.
    clock.advance(199);
    for (let i = 0; i < 3; i++) {
      const r = await client.request(request);
      assertEquals(r.status, 200, "still ejected 1 ms before the ejection time");
    }
    assertEquals(bad.requests.length, seenByBad, "no traffic to the ejected endpoint");
    // At the ejection time it is back: ejections are lifted on the next pick, and round robin
    // over three endpoints reaches each within three picks.
    clock.advance(1);
    for (let i = 0; i < 3; i++) await client.request(request);
    assertEquals(bad.requests.length, seenByBad + 1, "the ejected endpoint receives traffic again");
    const counts = good.map((u) => u.requests.length);
    assert(counts.every((n) => n >= 8), `healthy endpoints shared the load: ${counts}`);
  } finally {
    client.close();
    await p.proxy.stop();
    for (const u of [...good, bad]) await u.close();
  }
});

Deno.test("an endpoint that refuses connections is ejected (local-origin failures)", async () => {
  const good = await startUpstream();
  // A port that was just free: connecting to it is refused.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const dead = { hostname: "127.0.0.1", port: (probe.addr as Deno.NetAddr).port };
  probe.close();
  const outlierDetection: OutlierDetectionConfig = {
    consecutive5xxErrors: 2,
    consecutiveGatewayErrors: 0,
    splitExternalLocalOriginErrors: false,
    consecutiveLocalOriginFailures: 5,
    intervalMs: 10_000,
    baseEjectionTimeMs: 60_000,
    maxEjectionPercent: 50,
    maxEjectionTimeMs: 300_000,
    minHealthPercent: 0,
  };
  const p = await startProxy(snapshotWith([good.addr, dead], { outlierDetection }));
  const client = await TestClient.connect(p.outbound);
  try {
    const flags: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await client.request(request);
      if (r.status !== 200) flags.push(`${r.status} ${r.headers.get("x-weft-flag")}`);
    }
    assertEquals(flags, ["502 UF", "502 UF"], "two connect failures, then ejected");
    for (let i = 0; i < 6; i++) assertEquals((await client.request(request)).status, 200);
  } finally {
    client.close();
    await p.proxy.stop();
    await good.close();
  }
});

/** An upstream that holds every request until `release()`. */
async function startSlowUpstream(): Promise<TestUpstream & { release(): void }> {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => open = resolve);
  const up = await startUpstream(async () => {
    await gate;
    return new Response("slow");
  });
  return { ...up, release: () => open() };
}

Deno.test("maxRequests answers extra concurrent requests with 503 UO", async () => {
  const slow = await startSlowUpstream();
  const p = await startProxy(
    snapshotWith([slow.addr], { circuitBreaker: { ...noLimits, maxRequests: 2 } }),
  );
  try {
    const admitted = [oneRequest(p.outbound, request), oneRequest(p.outbound, request)];
    await eventually("two requests reach the upstream", () => slow.requests.length === 2);
    const refused = await Promise.all([
      oneRequest(p.outbound, request),
      oneRequest(p.outbound, request),
    ]);
    for (const r of refused) {
      assertEquals(r.status, 503);
      assertEquals(r.headers.get("x-weft-flag"), "UO");
    }
    assertEquals(slow.requests.length, 2, "refused requests never went upstream");
    slow.release();
    for (const r of await Promise.all(admitted)) assertEquals(r.status, 200);
    // Freed slots admit new requests.
    assertEquals((await oneRequest(p.outbound, request)).status, 200);
    assert(
      /weft_requests_total\{[^}]*code="503"[^}]*flag="UO"[^}]*\} 2/.test(p.metrics.render()),
      "UO replies are counted in metrics",
    );
    assert(
      /weft_circuit_breaker_overflows\{[^}]*limit="max_requests"[^}]*\} 2/.test(p.metrics.render()),
      "the breaker's overflow count is exported",
    );
  } finally {
    slow.release();
    await p.proxy.stop();
    await slow.close();
  }
});

Deno.test("maxConnections queues up to http1MaxPendingRequests, then overflows", async () => {
  const slow = await startSlowUpstream();
  const p = await startProxy(
    snapshotWith([slow.addr], {
      circuitBreaker: { ...noLimits, maxConnections: 1, maxPendingRequests: 1 },
    }),
  );
  try {
    const first = oneRequest(p.outbound, request);
    await eventually(
      "the first request holds the one connection",
      () => slow.requests.length === 1,
    );
    // Two more: one waits in the proxy's pending queue, the other finds the queue full. Which
    // is which depends on arrival order; the refused one is answered at once.
    const second = oneRequest(p.outbound, request);
    const third = oneRequest(p.outbound, request);
    const refused = await within(Promise.race([second, third]), 5_000, "one request refused");
    assertEquals(refused.status, 503);
    assertEquals(refused.headers.get("x-weft-flag"), "UO");
    assertEquals(slow.requests.length, 1, "the queued request has not gone upstream yet");
    slow.release();
    assertEquals((await first).status, 200);
    const statuses = (await Promise.all([second, third])).map((r) => r.status).sort();
    assertEquals(statuses, [200, 503], "the queued request got the released connection");
  } finally {
    slow.release();
    await p.proxy.stop();
    await slow.close();
  }
});

Deno.test("maxRequestsPerConnection closes a pooled connection after N requests", async () => {
  const raw = startRawUpstream();
  const p = await startProxy(
    snapshotWith([raw.addr], { circuitBreaker: { ...noLimits, maxRequestsPerConnection: 2 } }),
  );
  const client = await TestClient.connect(p.outbound);
  try {
    for (let i = 0; i < 6; i++) assertEquals((await client.request(request)).status, 200);
    assertEquals(raw.connections, 3, "two requests per upstream connection");
  } finally {
    client.close();
    await p.proxy.stop();
    await raw.close();
  }
});

Deno.test("a request queued for a connection gets 504 UT when the route times out", async () => {
  const slow = await startSlowUpstream();
  const snapshot = snapshotWith(
    [slow.addr],
    { circuitBreaker: { ...noLimits, maxConnections: 1 } },
    150,
  );
  // A second host for the same cluster, without a route timeout, holds the one connection.
  (snapshot.outbound as Map<string, VirtualHostConfig>).set("patient", {
    name: "patient",
    domains: ["patient"],
    routes: [{
      name: "default",
      match: { pathPrefix: "/" },
      destinations: [{ cluster: "outbound|svc", weight: 100 }],
      timeoutMs: 0,
    }],
  });
  const p = await startProxy(snapshot);
  try {
    const holder = oneRequest(p.outbound, "GET / HTTP/1.1\nHost: patient");
    await eventually("a request holds the one connection", () => slow.requests.length === 1);
    const queued = await oneRequest(p.outbound, request);
    assertEquals(queued.status, 504);
    assertEquals(queued.headers.get("x-weft-flag"), "UT");
    assertEquals(slow.requests.length, 1, "the queued request never went upstream");
    slow.release();
    assertEquals((await holder).status, 200);
    assertEquals((await oneRequest(p.outbound, request)).status, 200, "the slot was freed");
  } finally {
    slow.release();
    await p.proxy.stop();
    await slow.close();
  }
});

Deno.test("maxRetries: a retry beyond the limit is not made and the answer stands", async () => {
  // The first two requests wait for `firstTries`, later ones (retries) for `retries`.
  let openFirst!: () => void, openRetries!: () => void;
  const firstTries = new Promise<void>((r) => openFirst = r);
  const retries = new Promise<void>((r) => openRetries = r);
  let seen = 0;
  const up = await startUpstream(async () => {
    await (++seen <= 2 ? firstTries : retries);
    return new Response("busy", { status: 503 });
  });
  const snapshot = snapshotWith([up.addr], { circuitBreaker: { ...noLimits, maxRetries: 1 } });
  const vh = snapshot.outbound.get("svc")!;
  (snapshot.outbound as Map<string, VirtualHostConfig>).set("svc", {
    ...vh,
    routes: [{
      ...vh.routes[0],
      retries: { attempts: 1, perTryTimeoutMs: 0, retryOn: ["5xx"], retriableStatusCodes: [] },
    }],
  });
  const p = await startProxy(snapshot);
  try {
    const a = oneRequest(p.outbound, request);
    const b = oneRequest(p.outbound, request);
    await eventually("both first tries are upstream", () => up.requests.length === 2);
    openFirst();
    // One request takes the only retry slot (its retry waits upstream); the other cannot retry
    // and gets the upstream's own 503 at once.
    const refused = await within(Promise.race([a, b]), 5_000, "a request answered without retry");
    assertEquals(refused.status, 503);
    assertEquals(refused.body, "busy");
    assertEquals(refused.headers.get("x-weft-flag"), undefined, "the upstream's answer, relayed");
    await eventually("the admitted retry is upstream", () => up.requests.length === 3);
    openRetries();
    for (const r of await Promise.all([a, b])) {
      assertEquals(r.status, 503);
      assertEquals(r.body, "busy", "both clients get the upstream's answer");
    }
    // Without the breaker both requests would have retried: four upstream requests.
    assertEquals(up.requests.length, 3, "one retry was made, one was refused");
  } finally {
    openFirst();
    openRetries();
    await p.proxy.stop();
    await up.close();
  }
});

Deno.test("clients that abort their uploads do not get a healthy endpoint ejected", async () => {
  const up = await startUpstream(async (req) => {
    await req.arrayBuffer().catch(() => null);
    return new Response("ok");
  });
  // One endpoint, ejected after a single failure of any kind if one were counted.
  const outlierDetection: OutlierDetectionConfig = {
    consecutive5xxErrors: 1,
    consecutiveGatewayErrors: 0,
    splitExternalLocalOriginErrors: false,
    consecutiveLocalOriginFailures: 1,
    intervalMs: 10_000,
    baseEjectionTimeMs: 30_000,
    maxEjectionTimeMs: 300_000,
    maxEjectionPercent: 100,
    minHealthPercent: 0,
  };
  const p = await startProxy(snapshotWith([up.addr], { outlierDetection }));
  const aborts = 10;
  try {
    const head = new TextEncoder().encode(
      "POST /upload HTTP/1.1\r\nHost: svc\r\nContent-Length: 100000\r\n\r\n",
    );
    for (let i = 0; i < aborts; i++) {
      const conn = await Deno.connect(p.outbound);
      await conn.write(head);
      await conn.write(new Uint8Array(1024));
      conn.close();
    }
    const abandoned = new RegExp(
      `weft_requests_total\\{[^}]*code="0",flag="DC"[^}]*\\} ${aborts}\\b`,
    );
    await eventually(
      "every abort recorded as a downstream disconnect",
      () => abandoned.test(p.metrics.render()),
    );
    assert(
      !/weft_outlier_ejected_endpoints\{[^}]*\} 1/.test(p.metrics.render()),
      "no ejection",
    );
    const r = await oneRequest(p.outbound, request);
    assertEquals(r.status, 200, "the endpoint still serves");
  } finally {
    await p.proxy.stop();
    await up.close();
  }
});
