/**
 * @module
 * Request handling through a real proxy: retries only on the listed conditions, bounded by
 * `attempts` and `perTryTimeout` (upstream hits counted); the route timeout; fault injection
 * (abort percentage within a binomial bound, delay, flags FI/DI); and mirroring, which never
 * changes the response even when the mirror is slow or failing.
 */
import { assert, assertEquals, assertGreater, assertLess, eventually } from "./support/assert.ts";
import { FakeClock } from "../lib/mod.ts";
import { TestClient } from "./support/proxy.ts";
import {
  type Backend,
  backend,
  catalogEntry,
  get,
  type RunningProxy,
  runProxy,
  snapshotOf,
  stopAll,
} from "./support/traffic.ts";

function vs(http: string): string {
  return `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api }
spec:
  hosts: [api]
  http:
${http}`;
}

/**
 * Runs `fn` with a proxy routing host `api` per `http`, and backends as catalog services; the
 * proxy's timers run on `clock` when one is given.
 */
async function withApi(
  http: string,
  services: Record<string, Backend[]>,
  fn: (client: TestClient, p: RunningProxy) => Promise<void>,
  clock?: FakeClock,
) {
  const all = Object.values(services).flat();
  let p: RunningProxy | undefined;
  let client: TestClient | undefined;
  try {
    const catalog = Object.entries(services).flatMap(([s, bs]) =>
      bs.map((b) => catalogEntry(s, b))
    );
    p = await runProxy(snapshotOf(vs(http), catalog), { clock });
    client = await TestClient.connect(p.outbound);
    await fn(client, p);
  } finally {
    client?.close();
    await stopAll(p, all);
  }
}

/** A backend answering statuses from `plan` in turn (then 200), counting hits. */
async function scripted(name: string, plan: number[]): Promise<Backend & { hits: () => number }> {
  let hits = 0;
  const b = await backend(name, {}, async (req) => {
    await req.arrayBuffer();
    const status = plan[hits++] ?? 200;
    return new Response(`${name} ${status}`, { status });
  });
  return { ...b, hits: () => hits };
}

/**
 * Moves `clock` forward `stepMs` at a time until `done` holds, polling between steps so the
 * proxy's sockets make progress; for waits whose fake length is not fixed (a retry backoff is
 * random). Returns how far the clock moved.
 */
async function advanceUntil(
  what: string,
  clock: FakeClock,
  done: () => boolean,
  stepMs = 5,
): Promise<number> {
  const from = clock.now();
  await eventually(
    what,
    () => {
      if (done()) return true;
      clock.advance(stepMs);
      return false;
    },
    10_000,
    2,
  );
  return clock.now() - from;
}

/** A promise and its resolver, for an upstream that holds a response until the test says. */
function gate(): { held: Promise<void>; open: () => void } {
  const { promise, resolve } = Promise.withResolvers<void>();
  return { held: promise, open: () => resolve() };
}

function retries(attempts: number, retryOn: string, extra = ""): string {
  return `
    - retries: { attempts: ${attempts}, retryOn: "${retryOn}"${extra} }
      route: [{ destination: { host: up } }]
`;
}

Deno.test("retries happen only on the listed conditions and respect attempts", async () => {
  const cases: [string, number[], number, number][] = [
    // retryOn, upstream statuses, expected hits, expected final status
    ["5xx", [503, 503, 503, 503], 3, 503],
    ["5xx", [500, 200], 2, 200],
    ["gateway-error", [500], 1, 500],
    ["gateway-error", [502, 504, 200], 3, 200],
    ["retriable-4xx", [409, 200], 2, 200],
    ["retriable-4xx", [404], 1, 404],
    ["429,503", [429, 503, 200], 3, 200],
    ["429", [503], 1, 503],
    ["connect-failure", [503], 1, 503],
  ];
  for (const [retryOn, plan, hits, status] of cases) {
    const up = await scripted("up", plan);
    await withApi(retries(2, retryOn), { up: [up] }, async (client, p) => {
      const r = await client.request(get("api"));
      assertEquals([r.status, up.hits()], [status, hits], `${retryOn} ${plan}`);
      const flag = p.log.at(-1)?.flag;
      assertEquals(flag, status >= 500 && hits === 3 ? "URX" : "-", `${retryOn} flag`);
    });
  }
});

Deno.test("a small request body is resent on retry", async () => {
  const bodies: string[] = [];
  let hits = 0;
  const up = await backend("up", {}, async (req) => {
    bodies.push(await req.text());
    return new Response("x", { status: hits++ < 2 ? 503 : 200 });
  });
  await withApi(retries(3, "5xx"), { up: [up] }, async (client) => {
    const r = await client.request("POST / HTTP/1.1\nHost: api", "payload-123");
    assertEquals(r.status, 200);
    assertEquals(bodies, ["payload-123", "payload-123", "payload-123"]);
  });
});

/** A backend answering "good", and one on a port nothing listens on (connect refused). */
async function goodAndDead(): Promise<{ good: Backend; dead: Backend; deadPort: number }> {
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadPort = closed.addr.port;
  closed.close();
  const good = await backend("good");
  const dead: Backend = {
    ...good,
    name: "dead",
    addr: { hostname: "127.0.0.1", port: deadPort },
    close: () => Promise.resolve(),
  };
  return { good, dead, deadPort };
}

Deno.test("connect failures are retried on another endpoint only with a matching retryOn", async () => {
  const { good, dead } = await goodAndDead();
  await withApi(retries(2, "connect-failure"), { up: [good, dead] }, async (client, p) => {
    for (let i = 0; i < 6; i++) assertEquals((await client.request(get("api"))).body, "good");
    assert(p.log.every((e) => e.status === 200), "every request succeeded");
  });
  const good2 = await backend("good");
  await withApi(retries(2, "retriable-4xx"), { up: [good2, { ...dead }] }, async (client) => {
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await client.request(get("api"))).status);
    assert(statuses.some((s) => s >= 500), `connect failures surface: ${statuses}`);
  });
});

Deno.test("resets before a response are retried under reset, not otherwise", async () => {
  for (const [retryOn, expectConnections] of [["reset", 3], ["retriable-4xx", 1]] as const) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    let connections = 0;
    const accepting = (async () => {
      for await (const conn of listener) {
        connections++;
        // Read the head, then close without answering.
        await conn.read(new Uint8Array(4096)).catch(() => null);
        conn.close();
      }
    })().catch(() => {});
    const fake: Backend = {
      name: "reset",
      labels: {},
      addr: { hostname: "127.0.0.1", port: listener.addr.port },
      requests: [],
      close: async () => {
        listener.close();
        await accepting;
      },
    };
    await withApi(retries(2, retryOn), { up: [fake] }, async (client, p) => {
      const r = await client.request(get("api"));
      assertEquals(r.status, 502);
      assertEquals(connections, expectConnections, retryOn);
      assertEquals(p.log.at(-1)?.flag, retryOn === "reset" ? "URX" : "UC");
    });
  }
});

// On a FakeClock: the held tries never answer, so only the proxy's own timers (per-try and
// route deadlines, the retry backoff) can end them, and the test moves those timers' time.
Deno.test("perTryTimeout ends a slow try and retries; the route timeout bounds all tries", async () => {
  const clock = new FakeClock();
  const firstTry = gate();
  let hits = 0;
  const slowFirst = await backend("up", {}, async () => {
    if (hits++ === 0) await firstTry.held;
    return new Response("fast");
  });
  await withApi(
    retries(2, "5xx", ", perTryTimeout: 100ms"),
    { up: [slowFirst] },
    async (client) => {
      try {
        const response = client.request(get("api"));
        await eventually("the first try reaches the upstream", () => hits === 1);
        clock.advance(100); // the per-try timeout
        // The retry waits out a random backoff of at most 25 ms on the same clock.
        const backoff = await advanceUntil("the retry", clock, () => hits === 2);
        assert(backoff <= 30, `retried after a ${backoff} ms backoff`);
        const r = await response;
        // The first try is still held: the answer can only have come from the retry.
        assertEquals([r.status, r.body, hits], [200, "fast", 2]);
      } finally {
        firstTry.open();
      }
    },
    clock,
  );

  const slowClock = new FakeClock();
  const everyTry = gate();
  let slowHits = 0;
  const alwaysSlow = await backend("up", {}, async () => {
    slowHits++;
    await everyTry.held;
    return new Response("slow");
  });
  await withApi(
    `    - timeout: 2s
      retries: { attempts: 2, retryOn: "5xx", perTryTimeout: 60ms }
      route: [{ destination: { host: up } }]
`,
    { up: [alwaysSlow] },
    async (client, p) => {
      try {
        const response = client.request(get("api"));
        let answered = false;
        response.finally(() => answered = true);
        // Three tries of 60 ms plus two backoffs of at most 25 and 75 ms: well within 2 s.
        const took = await advanceUntil("the last try to time out", slowClock, () => answered);
        assert(took < 2000, `answered after ${took} ms of fake time`);
        const r = await response;
        assertEquals([r.status, r.headers.get("x-weft-flag"), slowHits], [504, "UT", 3]);
        assertEquals(p.log.at(-1)?.flag, "UT");
      } finally {
        everyTry.open();
      }
    },
    slowClock,
  );
});

Deno.test("the route timeout answers 504 UT", async () => {
  const clock = new FakeClock();
  const reply = gate();
  let hits = 0;
  const slow = await backend("up", {}, async () => {
    hits++;
    await reply.held;
    return new Response("late");
  });
  await withApi(
    `    - timeout: 80ms
      route: [{ destination: { host: up } }]
`,
    { up: [slow] },
    async (client) => {
      try {
        const response = client.request(get("api"));
        await eventually("the request reaches the upstream", () => hits === 1);
        // Exactly the route timeout on the proxy's clock; the upstream never answers.
        clock.advance(80);
        const r = await response;
        assertEquals([r.status, r.headers.get("x-weft-flag")], [504, "UT"]);
      } finally {
        reply.open();
      }
    },
    clock,
  );
});

Deno.test("fault abort hits about its percentage; delay applies and is flagged", async () => {
  const clock = new FakeClock();
  const up = await backend("up");
  await withApi(
    `    - match: [{ uri: { prefix: /abort } }]
      fault: { abort: { httpStatus: 418, percentage: { value: 50 } } }
      route: [{ destination: { host: up } }]
    - match: [{ uri: { prefix: /delay } }]
      fault: { delay: { fixedDelay: 60ms, percentage: { value: 100 } } }
      route: [{ destination: { host: up } }]
`,
    { up: [up] },
    async (client, p) => {
      const n = 400;
      let aborted = 0;
      for (let i = 0; i < n; i++) {
        const r = await client.request(get("api", "/abort"));
        if (r.status === 418) {
          aborted++;
          assertEquals(r.headers.get("x-weft-flag"), "FI");
        } else assertEquals(r.status, 200);
      }
      // Binomial(400, 0.5): mean 200, sd 10; 5 sd either way.
      assertGreater(aborted, 150);
      assertLess(aborted, 250);
      assertEquals(up.requests.length, n - aborted);
      assertEquals(p.log.filter((e) => e.flag === "FI").length, aborted);

      // The delay runs on the proxy's clock: the response waits until that clock has moved
      // 60 ms past the moment the request arrived (which is after the clock starts moving).
      const delayed = client.request(get("api", "/delay"));
      let answered = false;
      delayed.finally(() => answered = true);
      const waited = await advanceUntil("the delayed response", clock, () => answered);
      const d = await delayed;
      assertEquals(d.status, 200);
      assert(waited >= 60, `answered after ${waited} ms of fake time`);
      assertEquals(p.log.at(-1)?.flag, "DI");
      assert(p.log.at(-1)!.durationMs >= 60, "the access log counts the delay");
      assertEquals(up.requests.length, n - aborted + 1);
    },
    clock,
  );
});

Deno.test("mirror never changes the response, even when the mirror is slow or failing", async () => {
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => release = r);
  const primary = await backend("primary");
  const slowMirror = await backend("mirror", {}, async () => {
    await gate;
    return new Response("mirror", { status: 500 });
  });
  try {
    await withApi(
      `    - mirror: { host: shadow }
      route: [{ destination: { host: up } }]
`,
      { up: [primary], shadow: [slowMirror] },
      async (client) => {
        // The mirror holds every copy at its gate until the end, so each response arriving
        // at all shows the primary's answer does not wait for the mirror's (no time bound).
        for (let i = 0; i < 5; i++) {
          const r = await client.request(get("api", `/m${i}`, {}, "GET"));
          assertEquals([r.status, r.body], [200, "primary"]);
        }
        const seen = await eventually(
          "mirror copies",
          () => slowMirror.requests.length >= 5 && slowMirror.requests,
        );
        assertEquals(seen[0].headers.get("host"), "api-shadow");
        assertEquals(new URL(seen[0].url).pathname, "/m0");
        release();
      },
    );
  } finally {
    release();
  }

  // A mirror that refuses connections, with a body and a percentage: responses unaffected.
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadPort = closed.addr.port;
  closed.close();
  const primary2 = await backend("primary", {}, async (req) => {
    await req.arrayBuffer();
    return new Response("primary");
  });
  const dead: Backend = {
    ...primary2,
    name: "dead",
    addr: { hostname: "127.0.0.1", port: deadPort },
    close: () => Promise.resolve(),
  };
  await withApi(
    `    - mirror: { host: shadow }
      mirrorPercentage: { value: 50 }
      route: [{ destination: { host: up } }]
`,
    { up: [primary2], shadow: [dead] },
    async (client) => {
      for (let i = 0; i < 10; i++) {
        const r = await client.request("POST / HTTP/1.1\nHost: api", "body");
        assertEquals([r.status, r.body], [200, "primary"]);
      }
    },
  );
});

Deno.test("mirrorPercentage mirrors about that share of requests", async () => {
  const primary = await backend("primary");
  const mirror = await backend("mirror");
  await withApi(
    `    - mirror: { host: shadow }
      mirrorPercentage: { value: 25 }
      route: [{ destination: { host: up } }]
`,
    { up: [primary], shadow: [mirror] },
    async (client, p) => {
      const n = 300;
      for (let i = 0; i < n; i++) await client.request(get("api"));
      // Binomial(300, 0.25): mean 75, sd 7.5; wait for copies in flight, then 5 sd bounds.
      await eventually("mirrors settle", () => p.proxy.mirrorsInFlight() === 0);
      assertGreater(mirror.requests.length, 37);
      assertLess(mirror.requests.length, 113);
    },
  );
});

Deno.test("retries go to endpoints not tried yet: with one of two endpoints dead, none fails", async () => {
  const { good, dead, deadPort } = await goodAndDead();
  // A random balancer picks the dead endpoint for half the tries: without the previous-hosts
  // rule, one request in sixteen spends all four tries on it.
  const yaml = vs(retries(3, "connect-failure,reset,503")) + `
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: up }
spec:
  host: up
  trafficPolicy: { loadBalancer: { simple: RANDOM } }
`;
  let p: RunningProxy | undefined;
  let client: TestClient | undefined;
  try {
    p = await runProxy(snapshotOf(yaml, [catalogEntry("up", good), catalogEntry("up", dead)]));
    client = await TestClient.connect(p.outbound);
    const statuses: number[] = [];
    for (let i = 0; i < 100; i++) statuses.push((await client.request(get("api"))).status);
    assertEquals(statuses.filter((s) => s !== 200).length, 0, "failed requests");
    const deadTries = p.log.filter((e) => e.upstream.endsWith(`:${deadPort}`)).length;
    assertEquals(deadTries, 0, "no request ended on the dead endpoint");
  } finally {
    client?.close();
    await stopAll(p, [good]);
  }
});
