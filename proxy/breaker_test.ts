/**
 * @module
 * Circuit-breaker limits: requests, connections with their pending queue, retries, requests
 * per connection; counts carry over new limits.
 */
import type { CircuitBreakerConfig } from "../lib/mod.ts";
import { assert, assertEquals } from "../tests/support/assert.ts";
import { CircuitBreaker, PendingConnection, UNLIMITED } from "./breaker.ts";

function limits(overrides: Partial<CircuitBreakerConfig>): CircuitBreakerConfig {
  return { ...UNLIMITED, ...overrides };
}

Deno.test("maxRequests admits that many requests at once and refuses the next", () => {
  const b = new CircuitBreaker(limits({ maxRequests: 2 }));
  assert(b.tryStartRequest());
  assert(b.tryStartRequest());
  assert(!b.tryStartRequest(), "third concurrent request overflows");
  b.endRequest();
  assert(b.tryStartRequest(), "a slot freed by a finished request is reused");
  assertEquals(b.stats.activeRequests, 2);
  assertEquals(b.stats.requestOverflows, 1);
});

Deno.test("no limits: everything is admitted", () => {
  const b = new CircuitBreaker();
  for (let i = 0; i < 1000; i++) {
    assert(b.tryStartRequest());
    assertEquals(b.acquireConnection(), true);
    assert(b.tryStartRetry());
  }
  assert(b.reusable(1_000_000));
});

Deno.test("maxConnections queues requests up to the pending limit, then overflows", async () => {
  const b = new CircuitBreaker(limits({ maxConnections: 1, maxPendingRequests: 1 }));
  assertEquals(b.acquireConnection(), true);
  const waiting = b.acquireConnection();
  assert(waiting instanceof PendingConnection, "second request waits");
  assertEquals(b.acquireConnection(), false, "pending queue full: overflow");
  assertEquals(b.stats.pendingRequests, 1);
  b.releaseConnection();
  assertEquals(await waiting.granted, true, "the waiter gets the released slot");
  assertEquals(b.stats.activeConnections, 1);
  assertEquals(b.stats.pendingRequests, 0);
  assertEquals(b.stats.pendingOverflows, 1);
  assertEquals(b.stats.connectionOverflows, 2);
});

Deno.test("waiters are served in arrival order and may give up", async () => {
  const b = new CircuitBreaker(limits({ maxConnections: 1 }));
  assertEquals(b.acquireConnection(), true);
  const first = b.acquireConnection() as PendingConnection;
  const second = b.acquireConnection() as PendingConnection;
  const third = b.acquireConnection() as PendingConnection;
  second.cancel();
  assertEquals(await second.granted, false);
  b.releaseConnection();
  assertEquals(await first.granted, true);
  assert(!third.settled, "one slot, one waiter served");
  b.releaseConnection();
  assertEquals(await third.granted, true);
  third.cancel(); // no effect once granted: the holder releases its slot itself
  assertEquals(b.stats.activeConnections, 1);
});

Deno.test("raising maxConnections lets waiting requests proceed", async () => {
  const b = new CircuitBreaker(limits({ maxConnections: 1 }));
  b.acquireConnection();
  const waiting = b.acquireConnection() as PendingConnection;
  b.configure(limits({ maxConnections: 2 }));
  assertEquals(await waiting.granted, true);
  assertEquals(b.stats.activeConnections, 2);
});

Deno.test("maxRetries bounds concurrent retries", () => {
  const b = new CircuitBreaker(limits({ maxRetries: 1 }));
  assert(b.tryStartRetry());
  assert(!b.tryStartRetry());
  b.endRetry();
  assert(b.tryStartRetry());
  assertEquals(b.stats.retryOverflows, 1);
});

Deno.test("maxRequestsPerConnection retires a connection after N requests", () => {
  const b = new CircuitBreaker(limits({ maxRequestsPerConnection: 2 }));
  assert(b.reusable(1));
  assert(!b.reusable(2));
});

Deno.test("lowering a limit keeps counts; new requests see the new limit", () => {
  const b = new CircuitBreaker(limits({ maxRequests: 3 }));
  b.tryStartRequest();
  b.tryStartRequest();
  b.configure(limits({ maxRequests: 1 }));
  assert(!b.tryStartRequest());
  b.endRequest();
  assert(!b.tryStartRequest(), "one still in flight");
  b.endRequest();
  assert(b.tryStartRequest());
});
