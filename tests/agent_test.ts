/**
 * @module
 * A single real `weft agent` process: proxying both request forms to a local service,
 * the admin API, and config reload by SIGHUP and POST /v1/reload — a bad config is rejected
 * and the running one stays.
 */
import { assert, assertEquals, assertMatch, eventually } from "./support/assert.ts";
import { startAgent } from "./support/agent_process.ts";
import { rawRequest, serveDemoService } from "./support/demo.ts";

Deno.test("agent proxies to a local service and serves the admin API", async () => {
  const dir = await Deno.makeTempDir();
  const upstream = serveDemoService("reviews", "reviews-1", "v1", 0);
  const agent = await startAgent({
    name: "a1",
    dataDir: dir,
    services: [`reviews=${upstream.addr.port},version=v1`],
  });
  try {
    const { hostname, port } = agent.outbound;
    const viaHost = await rawRequest(hostname, port, "GET", "/x", { host: "reviews" });
    assertEquals(viaHost.status, 200, viaHost.body);
    assertEquals(JSON.parse(viaHost.body).path, "/x");
    const viaProxy = await rawRequest(hostname, port, "GET", "http://reviews/y?q=1", {
      host: "reviews",
    });
    assertEquals(viaProxy.status, 200);
    assertEquals(JSON.parse(viaProxy.body).path, "/y");
    const none = await rawRequest(hostname, port, "GET", "/", { host: "nosuch" });
    assertEquals(none.status, 404);
    assertEquals(JSON.parse(none.body).flag, "NR");

    const services = await agent.get<{ services: { name: string; endpoints: unknown[] }[] }>(
      "/v1/services",
    );
    assertEquals(services.services.map((s) => s.name), ["reviews"]);
    const routes = await agent.get<{ version: number; outbound: { host: string }[] }>("/v1/routes");
    assertEquals(routes.outbound.map((h) => h.host), ["reviews"]);
    const metrics = await (await fetch(`http://${agent.admin}/metrics`)).text();
    assertMatch(metrics, /# TYPE \w+ counter/);
    const dash = await fetch(`http://${agent.admin}/`);
    assertMatch(await dash.text(), /<title>Weft · a1<\/title>/);
    const idFile = (await Deno.readTextFile(`${dir}/node-id`)).trim();
    assertEquals((await agent.get<{ id: string }>("/v1/node")).id, idFile);
  } finally {
    assertEquals(await agent.stop(), 0);
    await upstream.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SIGHUP and POST /v1/reload apply a changed config; an invalid one is rejected", async () => {
  const dir = await Deno.makeTempDir();
  const one = serveDemoService("one", "one-1", "v1", 0);
  const two = serveDemoService("two", "two-1", "v1", 0);
  const configPath = `${dir}/weft.yaml`;
  await Deno.writeTextFile(configPath, `services:\n  - { name: one, port: ${one.addr.port} }\n`);
  const agent = await startAgent({
    name: "r1",
    dataDir: `${dir}/data`,
    args: ["--config", configPath],
  });
  const hosts = async () =>
    (await agent.get<{ outbound: { host: string }[] }>("/v1/routes")).outbound.map((h) => h.host);
  try {
    assertEquals(await hosts(), ["one"]);
    await Deno.writeTextFile(
      configPath,
      `services:\n  - { name: one, port: ${one.addr.port} }\n  - { name: two, port: ${two.addr.port} }\n`,
    );
    Deno.kill(agent.pid, "SIGHUP");
    await eventually("SIGHUP reload", async () => (await hosts()).length === 2);
    const r = await rawRequest(agent.outbound.hostname, agent.outbound.port, "GET", "/", {
      host: "two",
    });
    assertEquals(JSON.parse(r.body).service, "two");

    await Deno.writeTextFile(configPath, `services:\n  - { name: one, port: 99999 }\n`);
    const bad = await fetch(`http://${agent.admin}/v1/reload`, { method: "POST" });
    assertEquals(bad.status, 400);
    const err = await bad.json();
    assertMatch(err.error, /services\[0\]\.port/);
    assertEquals(await hosts(), ["one", "two"], "the running config stays");

    await Deno.writeTextFile(configPath, `services:\n  - { name: two, port: ${two.addr.port} }\n`);
    const ok = await fetch(`http://${agent.admin}/v1/reload`, { method: "POST" });
    assertEquals(ok.status, 200);
    assert((await ok.json()).snapshotVersion > 1);
    assertEquals(await hosts(), ["two"]);
  } finally {
    await agent.stop();
    await one.shutdown();
    await two.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reloads under load lose no request", async () => {
  const dir = await Deno.makeTempDir();
  const upstream = serveDemoService("svc", "svc-1", "v1", 0);
  const configPath = `${dir}/weft.json`;
  const write = (timeout: number) =>
    Deno.writeTextFile(
      configPath,
      JSON.stringify({
        services: [{ name: "svc", port: upstream.addr.port }],
        proxy: { routeTimeoutMs: timeout },
      }),
    );
  await write(15000);
  const agent = await startAgent({
    name: "l1",
    dataDir: `${dir}/data`,
    args: ["--config", configPath],
  });
  try {
    let stop = false;
    const statuses = new Map<number, number>();
    const worker = async () => {
      for (let i = 0; i < 2000 && !stop; i++) {
        const r = await rawRequest(agent.outbound.hostname, agent.outbound.port, "GET", "/", {
          host: "svc",
        });
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      }
    };
    const workers = Array.from({ length: 8 }, worker);
    for (let i = 0; i < 10; i++) {
      await write(15000 + i);
      const res = await fetch(`http://${agent.admin}/v1/reload`, { method: "POST" });
      assertEquals(res.status, 200);
      await res.body?.cancel();
      Deno.kill(agent.pid, "SIGHUP");
    }
    stop = true;
    await Promise.all(workers);
    const total = [...statuses.values()].reduce((a, b) => a + b, 0);
    assert(total > 0);
    assertEquals([...statuses.keys()], [200], `statuses: ${JSON.stringify([...statuses])}`);
  } finally {
    await agent.stop();
    await upstream.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--access-log writes one JSON line per request to stdout", async () => {
  const dir = await Deno.makeTempDir();
  const upstream = serveDemoService("logged", "logged-1", "v1", 0);
  const agent = await startAgent({
    name: "al",
    dataDir: dir,
    services: [`logged=${upstream.addr.port}`],
    args: ["--access-log"],
    captureStdout: true,
  });
  try {
    const { hostname, port } = agent.outbound;
    await rawRequest(hostname, port, "GET", "/a", { host: "logged", "x-request-id": "rid-1" });
    await rawRequest(hostname, port, "GET", "/b", { host: "missing" });
    const lines = await eventually(
      "two access-log lines",
      () => agent.stdout.length >= 2 ? agent.stdout.map((l) => JSON.parse(l)) : undefined,
    );
    assertEquals(lines[0].path, "/a");
    assertEquals(lines[0].status, 200);
    assertEquals(lines[0].requestId, "rid-1");
    assertEquals(lines[0].cluster, "outbound|logged");
    assertEquals([lines[1].status, lines[1].flag], [404, "NR"]);
  } finally {
    await agent.stop();
    await upstream.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--advertise-addr with --gossip-addr HOST:0 advertises the bound gossip port", async () => {
  const dir = await Deno.makeTempDir();
  const agent = await startAgent({
    name: "adv1",
    dataDir: dir,
    gossipAddr: "127.0.0.1:0",
    args: ["--advertise-addr", "127.0.0.1"],
  });
  try {
    const { members } = await agent.get<{ members: { name: string; address: string }[] }>(
      "/v1/members",
    );
    const self = members.find((m) => m.name === "adv1");
    assert(self, `adv1 is not among ${JSON.stringify(members)}`);
    assertEquals(self.address, agent.gossip);
    assertMatch(self.address, /^127\.0\.0\.1:[1-9][0-9]*$/);
  } finally {
    assertEquals(await agent.stop(), 0);
    await Deno.remove(dir, { recursive: true });
  }
});
