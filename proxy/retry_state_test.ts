/**
 * @module
 * The retry loop's state machine: relay, retry, or give up (and whether giving up means the
 * retries ran out, `URX`), for responses and failures, with Istio's `attempts` counted after
 * the first try.
 */
import type { RouteRetryPolicy } from "../lib/mod.ts";
import { CONNECT_FAILURE, RESET } from "./filters/retry.ts";
import { RetryState, RetryVerdict } from "./retry_state.ts";

function assertEquals<T>(actual: T, expected: T, what = ""): void {
  if (actual !== expected) {
    throw new Error(`${what ? what + ": " : ""}expected ${expected}, got ${actual}`);
  }
}

const twoRetriesOn5xx: RouteRetryPolicy = {
  attempts: 2,
  perTryTimeoutMs: 100,
  retryOn: ["5xx"],
  retriableStatusCodes: [],
};

Deno.test("without a policy every try's answer is relayed and every failure replied", () => {
  const state = new RetryState();
  state.start(undefined);
  assertEquals(state.afterResponse(503), RetryVerdict.Relay);
  assertEquals(state.afterFailure(RESET), RetryVerdict.Reply);
  assertEquals(state.perTryTimeoutMs, 0);
});

Deno.test("a retriable status is retried `attempts` times, then relayed as exhausted", () => {
  const state = new RetryState();
  state.start(twoRetriesOn5xx);
  assertEquals(state.perTryTimeoutMs, 100);
  assertEquals(state.afterResponse(200), RetryVerdict.Relay, "a success");
  assertEquals(state.afterResponse(404), RetryVerdict.Relay, "a 4xx under 5xx");
  assertEquals(state.afterResponse(503), RetryVerdict.Retry, "first try");
  assertEquals(state.next(), 1);
  assertEquals(state.afterResponse(503), RetryVerdict.Retry, "first retry");
  assertEquals(state.next(), 2);
  assertEquals(state.afterResponse(503), RetryVerdict.RelayExhausted, "second retry");
});

Deno.test("failures: a retriable one is retried until exhausted, another replied at once", () => {
  const state = new RetryState();
  state.start({ ...twoRetriesOn5xx, retryOn: ["connect-failure"] });
  assertEquals(state.afterFailure(RESET), RetryVerdict.Reply, "reset is not connect-failure");
  assertEquals(state.afterFailure(null), RetryVerdict.Reply, "no condition applies");
  assertEquals(state.afterFailure(CONNECT_FAILURE), RetryVerdict.Retry);
  state.next();
  state.next();
  assertEquals(state.afterFailure(CONNECT_FAILURE), RetryVerdict.ReplyExhausted);
});

Deno.test("a stopped state retries nothing, and start resets the count", () => {
  const state = new RetryState();
  state.start(twoRetriesOn5xx);
  state.next();
  state.stop();
  assertEquals(state.afterResponse(503), RetryVerdict.Relay, "after an interim answer");
  state.start(twoRetriesOn5xx);
  assertEquals(state.tryIndex, 0);
  assertEquals(state.afterResponse(503), RetryVerdict.Retry);
});

Deno.test("a peer's failure reply is retried under the failure it reports as well as its status", () => {
  const state = new RetryState();
  state.start({ ...twoRetriesOn5xx, retryOn: ["connect-failure", "reset"] });
  assertEquals(state.afterResponse(502), RetryVerdict.Relay, "a plain 502 under connect-failure");
  assertEquals(state.afterResponse(502, CONNECT_FAILURE), RetryVerdict.Retry, "a peer's 502 UF");
  assertEquals(state.afterResponse(502, RESET), RetryVerdict.Retry, "a peer's 502 UR");
  state.next();
  state.next();
  assertEquals(state.afterResponse(502, RESET), RetryVerdict.RelayExhausted);
});
