/**
 * @module
 * Destinations and balancing through a real proxy: weighted splits within a chi-square bound,
 * DestinationRule subsets selecting endpoints by label, every balancer reachable through a
 * DestinationRule, consistent-hash stickiness by header and by generated cookie, and a
 * routing change (snapshot swap to a new VirtualService) under load that loses no request.
 */
import { assert, assertEquals, assertLess } from "./support/assert.ts";
import { silentLogger } from "../lib/mod.ts";
import { ClusterManager } from "../proxy/cluster.ts";
import { TestClient, type TestResponse } from "./support/proxy.ts";
import {
  type Backend,
  backend,
  catalogEntry,
  CHI_SQUARE_P00001,
  chiSquare,
  get,
  type RunningProxy,
  runProxy,
  snapshotOf,
  stopAll,
  tally,
} from "./support/traffic.ts";

const subsets = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews }
spec:
  host: reviews
  subsets:
    - { name: v1, labels: { version: v1 } }
    - { name: v2, labels: { version: v2 } }
    - { name: v3, labels: { version: v3 } }
`;

function vs(http: string): string {
  return `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews }
spec:
  hosts: [reviews]
  http:
${http}`;
}

async function threeVersions(): Promise<Backend[]> {
  return [
    await backend("v1a", { version: "v1" }),
    await backend("v1b", { version: "v1" }),
    await backend("v2", { version: "v2" }),
    await backend("v3", { version: "v3" }),
  ];
}

async function send(client: TestClient, n: number, head: (i: number) => string) {
  const out: TestResponse[] = [];
  for (let i = 0; i < n; i++) out.push(await client.request(head(i)));
  return out;
}

async function withReviews(
  yaml: string,
  fn: (client: TestClient, p: RunningProxy, backends: Backend[]) => Promise<void>,
) {
  const backends = await threeVersions();
  let p: RunningProxy | undefined;
  let client: TestClient | undefined;
  try {
    p = await runProxy(snapshotOf(yaml, backends.map((b) => catalogEntry("reviews", b))));
    client = await TestClient.connect(p.outbound);
    await fn(client, p, backends);
  } finally {
    client?.close();
    await stopAll(p, backends);
  }
}

Deno.test("weighted split 60/30/10 over subsets holds within a chi-square bound", async () => {
  const yaml = subsets + "---" + vs(`
    - route:
        - { destination: { host: reviews, subset: v1 }, weight: 60 }
        - { destination: { host: reviews, subset: v2 }, weight: 30 }
        - { destination: { host: reviews, subset: v3 }, weight: 10 }
`);
  await withReviews(yaml, async (client) => {
    const n = 800;
    const counts = tally(await send(client, n, () => get("reviews")));
    const v1 = (counts.get("v1a") ?? 0) + (counts.get("v1b") ?? 0);
    const observed = [v1, counts.get("v2") ?? 0, counts.get("v3") ?? 0];
    assertEquals(observed.reduce((a, b) => a + b), n);
    const x2 = chiSquare(observed, [0.6, 0.3, 0.1]);
    assertLess(x2, CHI_SQUARE_P00001[2], `chi-square ${x2.toFixed(2)} for ${observed}`);
    // Round robin inside subset v1: both of its endpoints share its traffic evenly.
    assert(Math.abs((counts.get("v1a") ?? 0) - (counts.get("v1b") ?? 0)) <= 1, "v1 split evenly");
  });
});

Deno.test("a subset routes only to endpoints with its labels", async () => {
  const yaml = subsets + "---" + vs(`
    - match: [{ headers: { x-version: { exact: v2 } } }]
      route: [{ destination: { host: reviews, subset: v2 } }]
    - route: [{ destination: { host: reviews, subset: v1 } }]
`);
  await withReviews(yaml, async (client) => {
    const v2 = tally(await send(client, 20, () => get("reviews", "/", { "x-version": "v2" })));
    assertEquals([...v2.keys()], ["v2"]);
    const v1 = tally(await send(client, 20, () => get("reviews")));
    assertEquals([...v1.keys()].sort(), ["v1a", "v1b"]);
  });
});

function lb(policy: string): string {
  return `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews }
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: ${policy}
`;
}

Deno.test("every balancer is reachable through a DestinationRule and serves all endpoints", async () => {
  for (
    const policy of [
      "{ simple: ROUND_ROBIN }",
      "{ simple: LEAST_REQUEST }",
      "{ simple: RANDOM }",
      "{ simple: PEAK_EWMA }",
    ]
  ) {
    await withReviews(lb(policy), async (client, p) => {
      const counts = tally(await send(client, 80, () => get("reviews")));
      assertEquals([...counts.keys()].sort(), ["v1a", "v1b", "v2", "v3"], policy);
      if (policy.includes("ROUND_ROBIN")) assertEquals([...counts.values()], [20, 20, 20, 20]);
      // Balancers that count active requests were released once per pick.
      assertEquals(p.log.filter((e) => e.status === 200).length, 80);
    });
  }
});

Deno.test("consistent hash by header is sticky per key and spreads keys (ring hash, maglev)", async () => {
  for (
    const policy of [
      "{ consistentHash: { httpHeaderName: x-user, ringHash: { minimumRingSize: 1024 } } }",
      "{ consistentHash: { httpHeaderName: x-user, maglev: { tableSize: 65537 } } }",
    ]
  ) {
    await withReviews(lb(policy), async (client) => {
      const owners = new Map<string, string>();
      for (let round = 0; round < 3; round++) {
        for (let u = 0; u < 40; u++) {
          const r = await client.request(get("reviews", "/", { "x-user": `user-${u}` }));
          const prev = owners.get(`user-${u}`);
          if (prev !== undefined) assertEquals(r.body, prev, `user-${u} sticks (${policy})`);
          owners.set(`user-${u}`, r.body);
        }
      }
      const used = new Set(owners.values());
      assert(used.size >= 3, `40 keys spread over ${used.size} endpoints`);
    });
  }
});

Deno.test("consistent hash by cookie: a generated cookie with ttl keeps the client sticky", async () => {
  const policy = "{ consistentHash: { httpCookie: { name: cart, path: /, ttl: 3600s } } }";
  await withReviews(lb(policy), async (client) => {
    const first = await client.request(get("reviews"));
    const setCookie = first.headers.get("set-cookie") ?? "";
    assert(/^cart=[0-9a-f]+; Path=\/; Max-Age=3600; HttpOnly$/.test(setCookie), setCookie);
    const cookie = setCookie.split(";")[0];
    for (let i = 0; i < 10; i++) {
      const r = await client.request(get("reviews", "/", { cookie: `a=b; ${cookie}` }));
      assertEquals(r.body, first.body, "same endpoint with the cookie");
      assertEquals(r.headers.get("set-cookie"), undefined, "no new cookie once sent");
    }
    const spread = new Set<string>();
    for (let i = 0; i < 40; i++) {
      spread.add((await client.request(get("reviews", "/", { cookie: `cart=k${i}` }))).body);
    }
    assert(spread.size >= 3, `cookies spread over ${spread.size} endpoints`);
  });
});

Deno.test("a routing change under load loses no request", async () => {
  const backends = [await backend("old"), await backend("new")];
  let p: RunningProxy | undefined;
  const clients: TestClient[] = [];
  try {
    const catalog = [catalogEntry("old", backends[0]), catalogEntry("new", backends[1])];
    const route = (dest: string) => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: front }
spec:
  hosts: [front]
  http:
    - match: [{ uri: { prefix: / } }]
      route: [{ destination: { host: ${dest} } }]
`;
    p = await runProxy(snapshotOf(route("old"), catalog, { version: 1 }));
    for (let i = 0; i < 4; i++) clients.push(await TestClient.connect(p.outbound));
    let swapped = false;
    let afterSwap = 0;
    const results: TestResponse[] = [];
    const deadline = Date.now() + 10_000;
    const load = clients.map(async (c) => {
      for (let i = 0; i < 5000 && Date.now() < deadline; i++) {
        results.push(await c.request(get("front", `/r${i}`)));
        if (swapped && ++afterSwap >= 200) return;
      }
    });
    // Swap once some traffic has flowed, while the clients keep sending.
    const start = Date.now();
    while (results.length < 200 && Date.now() - start < 5_000) {
      await new Promise((r) => setTimeout(r, 5));
    }
    p.proxy.update(snapshotOf(route("new"), catalog, { version: 2 }));
    swapped = true;
    await Promise.all(load);
    assert(results.length >= 400, `${results.length} requests`);
    assertEquals(results.filter((r) => r.status !== 200).length, 0, "no failed request");
    const counts = tally(results);
    assert(
      (counts.get("old") ?? 0) > 0 && (counts.get("new") ?? 0) > 0,
      JSON.stringify([...counts]),
    );
    // After the swap every new request goes to the new destination.
    assertEquals((await clients[0].request(get("front"))).body, "new");
  } finally {
    for (const c of clients) c.close();
    await stopAll(p, backends);
  }
});

Deno.test("a cluster keeps its balancer across swaps unless its balancer settings change", () => {
  const manager = new ClusterManager(silentLogger);
  const hash = (size: number, extra = "") =>
    lb(`{ consistentHash: { httpHeaderName: x-user, maglev: { tableSize: ${size} } } }`) + extra;
  const entry = (port: number, version: string) => ({
    service: "reviews",
    node: `n${port}`,
    nodeId: `n${port}`,
    hostname: "127.0.0.1",
    port,
    protocol: "http" as const,
    labels: { version },
    healthy: true,
  });
  manager.sync(snapshotOf(hash(7), [entry(1, "v1"), entry(2, "v1")]));
  const first = manager.get("outbound|reviews")!.balancer;
  // Same settings, new endpoints: the balancer is updated in place.
  manager.sync(snapshotOf(hash(7), [entry(1, "v1"), entry(3, "v1")], { version: 2 }));
  assert(manager.get("outbound|reviews")!.balancer === first, "kept across an endpoint change");
  // Another table size: a new balancer, already holding the endpoints.
  manager.sync(snapshotOf(hash(11), [entry(1, "v1"), entry(3, "v1")], { version: 3 }));
  const rebuilt = manager.get("outbound|reviews")!.balancer;
  assert(rebuilt !== first, "rebuilt for a new table size");
  assertEquals(rebuilt.pick({ hashKey: "k" })?.port !== undefined, true);
});
