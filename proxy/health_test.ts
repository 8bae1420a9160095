/**
 * @module
 * HealthChecker under a FakeClock with a scripted probe (thresholds, timeouts, recovery,
 * reload, stop), plus the real HTTP and TCP probes against loopback servers.
 */
import { assert, assertEquals } from "../tests/support/assert.ts";
import {
  FakeClock,
  type LocalService,
  localServiceSchema,
  parseServiceSpec,
  Registry,
} from "../lib/mod.ts";
import { type CheckedService, defaultProbe, HealthChecker, isChecked } from "./health.ts";

function svc(name: string, check: Record<string, unknown> | undefined, protocol = "http") {
  return localServiceSchema.parse({ name, port: 8080, protocol, check });
}

/** Lets resolved probe promises settle (the checker awaits them). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

interface Harness {
  clock: FakeClock;
  metrics: Registry;
  checker: HealthChecker;
  changes: [string, boolean][];
  /** What the probe answers next: true pass, false fail, "hang" never answers. */
  answer: Map<string, boolean | "hang">;
  probes: string[];
}

function harness(services: LocalService[]): Harness {
  const clock = new FakeClock();
  const metrics = new Registry();
  const changes: [string, boolean][] = [];
  const answer = new Map<string, boolean | "hang">();
  const probes: string[] = [];
  const checker = new HealthChecker(services, {
    clock,
    metrics,
    onChange: (s, h) => changes.push([s, h]),
    probe: (s, signal) => {
      probes.push(s.name);
      const a = answer.get(s.name) ?? true;
      if (a === "hang") {
        return new Promise((_, reject) =>
          signal.addEventListener("abort", () => reject(signal.reason))
        );
      }
      return Promise.resolve(a);
    },
  });
  return { clock, metrics, checker, changes, answer, probes };
}

/** Advances the clock and lets the probes it started finish. */
async function tick(h: Harness, ms: number): Promise<void> {
  h.clock.advance(ms);
  await settle();
}

Deno.test("config: check defaults and --service keys", () => {
  const s = svc("web", { path: "/healthz" });
  assertEquals(s.check, {
    path: "/healthz",
    intervalMs: 10_000,
    timeoutMs: 2000,
    healthyThreshold: 1,
    unhealthyThreshold: 2,
  });
  assert(isChecked(s));
  assert(!isChecked(svc("web", {})), "an HTTP service without a path is not checked");
  assert(isChecked(svc("db", {}, "tcp")), "a TCP service is checked by connecting");
  assert(!isChecked(svc("web", undefined)));

  const parsed = parseServiceSpec("web=8080,check=/healthz,check-interval-ms=200,version=v2");
  assert(typeof parsed !== "string", String(parsed));
  assertEquals(parsed.labels, { version: "v2" }, "check keys are not labels");
  assertEquals(parsed.check?.path, "/healthz");
  assertEquals(parsed.check?.intervalMs, 200);
  const tcp = parseServiceSpec("db=5432,check=connect,protocol=tcp");
  assert(typeof tcp !== "string" && isChecked(tcp), String(tcp));
  assertEquals(tcp.check.path, undefined);
  const bad = parseServiceSpec("web=8080,check=healthz");
  assert(typeof bad === "string" && bad.includes("check.path"), String(bad));
  const badInterval = parseServiceSpec("web=8080,check=/h,check-interval-ms=5s");
  assert(typeof badInterval === "string" && badInterval.includes("check-interval-ms"));
});

Deno.test("health: healthy at start, unhealthy after the threshold, recovers on a pass", async () => {
  const h = harness([svc("web", { path: "/h", intervalMs: 100, unhealthyThreshold: 2 })]);
  try {
    await tick(h, 0);
    assertEquals(h.probes.length, 1, "the first check runs at once");
    assert(h.checker.healthy("web"));
    h.answer.set("web", false);
    await tick(h, 100);
    assert(h.checker.healthy("web"), "one failure is below the threshold");
    assertEquals(h.changes, []);
    await tick(h, 100);
    assert(!h.checker.healthy("web"));
    assertEquals(h.changes, [["web", false]]);
    assertEquals([...h.checker.unhealthy()], ["web"]);
    const text = h.metrics.render();
    assert(text.includes('weft_health_check_status{service="web"} 0'), text);
    assert(text.includes('weft_health_check_failures_total{service="web"} 2'), text);
    await tick(h, 100);
    assertEquals(h.changes.length, 1, "only flips are reported");
    h.answer.set("web", true);
    await tick(h, 100);
    assert(h.checker.healthy("web"));
    assertEquals(h.changes, [["web", false], ["web", true]]);
    assert(h.metrics.render().includes('weft_health_check_status{service="web"} 1'));
  } finally {
    h.checker.stop();
  }
});

Deno.test("health: healthyThreshold needs consecutive passes; a pass resets failures", async () => {
  const h = harness([
    svc("web", { path: "/h", intervalMs: 100, unhealthyThreshold: 2, healthyThreshold: 3 }),
  ]);
  try {
    h.answer.set("web", false);
    await tick(h, 0);
    h.answer.set("web", true);
    await tick(h, 100); // the pass resets the failure count
    h.answer.set("web", false);
    await tick(h, 100);
    assert(h.checker.healthy("web"), "failures were not consecutive");
    await tick(h, 100);
    assert(!h.checker.healthy("web"));
    h.answer.set("web", true);
    await tick(h, 100);
    await tick(h, 100);
    assert(!h.checker.healthy("web"), "two passes are below healthyThreshold 3");
    await tick(h, 100);
    assert(h.checker.healthy("web"));
  } finally {
    h.checker.stop();
  }
});

Deno.test("health: a probe that outlives its timeout is a failure and is aborted", async () => {
  const h = harness([
    svc("web", { path: "/h", intervalMs: 1000, timeoutMs: 300, unhealthyThreshold: 1 }),
  ]);
  try {
    h.answer.set("web", "hang");
    await tick(h, 0);
    await tick(h, 299);
    assert(h.checker.healthy("web"), "not yet timed out");
    await tick(h, 1);
    assert(!h.checker.healthy("web"));
    assertEquals(h.probes.length, 1);
    await tick(h, 999);
    assertEquals(h.probes.length, 1, "the next check waits a full interval after the timeout");
    await tick(h, 1);
    assertEquals(h.probes.length, 2);
  } finally {
    h.checker.stop();
  }
});

Deno.test("health: stop clears every timer and aborts checks in flight", async () => {
  const h = harness([
    svc("a", { path: "/h", intervalMs: 100 }),
    svc("b", { path: "/h", intervalMs: 100, timeoutMs: 50 }),
  ]);
  h.answer.set("b", "hang");
  await tick(h, 0);
  assert(h.clock.pending > 0);
  h.checker.stop();
  assertEquals(h.clock.pending, 0);
  await tick(h, 10_000);
  assertEquals(h.probes.sort(), ["a", "b"], "no check after stop");
  assertEquals(h.changes, []);
});

Deno.test("health: update keeps unchanged checks, restarts changed ones, drops removed", async () => {
  const web = svc("web", { path: "/h", intervalMs: 100, unhealthyThreshold: 1 });
  const api = svc("api", { path: "/h", intervalMs: 100, unhealthyThreshold: 1 });
  const h = harness([web, api]);
  try {
    h.answer.set("web", false);
    h.answer.set("api", false);
    await tick(h, 0);
    assertEquals(h.checker.unhealthy(), new Set(["web", "api"]));
    h.changes.length = 0;
    // web unchanged, api removed: api is reported healthy so callers forget it.
    h.checker.update([web, svc("db", {}, "tcp")]);
    assertEquals(h.changes, [["api", true]]);
    assertEquals(h.checker.unhealthy(), new Set(["web"]));
    // A changed check starts over, healthy.
    h.checker.update([svc("web", { path: "/other", intervalMs: 100 }), svc("db", {}, "tcp")]);
    assertEquals(h.checker.unhealthy(), new Set());
    assertEquals(h.changes, [["api", true], ["web", true]]);
  } finally {
    h.checker.stop();
  }
  assertEquals(h.clock.pending, 0);
});

Deno.test("health: the real probe passes on 2xx and 429, fails otherwise, connects for TCP", async () => {
  let status = 200;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response("body that the probe must not leak", { status }),
  );
  try {
    const port = server.addr.port;
    const http = { ...svc("web", { path: "/healthz" }), port } as CheckedService;
    const probe = () => defaultProbe(http, AbortSignal.timeout(2000));
    assertEquals(await probe(), true);
    status = 429;
    assertEquals(await probe(), true);
    status = 503;
    assertEquals(await probe(), false);
    const tcp = { ...svc("db", {}, "tcp"), port } as CheckedService;
    assertEquals(await defaultProbe(tcp, AbortSignal.timeout(2000)), true);
  } finally {
    await server.shutdown();
  }
  // Nothing listens on the port now: the connect is refused.
  const closed = { ...svc("db", {}, "tcp"), port: server.addr.port } as CheckedService;
  let refused = false;
  await defaultProbe(closed, AbortSignal.timeout(2000)).catch(() => (refused = true));
  assert(refused);
});
