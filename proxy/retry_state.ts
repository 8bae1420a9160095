/**
 * @module
 * The retry loop's decisions as a small per-request state machine: after each try, given how
 * it ended (a response status, or a failure's retry condition), whether to relay that answer,
 * to try again, or to give up — and whether giving up means the retries ran out (Envoy's
 * `URX`). The concrete layer runs the tries and owns the circuit breaker's `maxRetries` budget;
 * this keeps Istio's `retries` semantics (`attempts` retries after the first try, `retryOn`
 * conditions, `perTryTimeout`) in one place and testable without sockets.
 */
import type { RouteRetryPolicy } from "../lib/mod.ts";
import { retriableResult, type TryResult } from "./filters/retry.ts";

/** What to do after a try. */
export const enum RetryVerdict {
  /** Relay the response as it is. */
  Relay,
  /** Relay the response: it was retriable but no attempt is left (flag `URX`). */
  RelayExhausted,
  /** Drop this answer and try again. */
  Retry,
  /** Answer with the failure: it is not retriable. */
  Reply,
  /** Answer with the failure: it was retriable but no attempt is left (`URX`). */
  ReplyExhausted,
}

/** Reused retry input for a response status (decisions are synchronous). */
const statusResult: { kind: "status"; status: number } = { kind: "status", status: 0 };

/** The retry state of one request; one instance per exchange, restarted per request. */
export class RetryState {
  /** The route's policy, or undefined when the request gets one try. */
  policy: RouteRetryPolicy | undefined = undefined;
  /** The current try: 0 for the first, n for the n-th retry. */
  tryIndex = 0;

  /** Starts a request's tries under `policy` (undefined: exactly one try). */
  start(policy: RouteRetryPolicy | undefined): void {
    this.policy = policy;
    this.tryIndex = 0;
  }

  /** The per-try timeout of the policy (0: none). */
  get perTryTimeoutMs(): number {
    return this.policy?.perTryTimeoutMs ?? 0;
  }

  /** No further try whatever happens (the client already saw part of this one). */
  stop(): void {
    this.policy = undefined;
  }

  /**
   * After a try that got a response head with `status`. `standsFor` is the failure the answer
   * reports when another node's proxy made it (its inbound listener could not reach the
   * instance): retried under that failure's conditions too, as if this node had met it.
   */
  afterResponse(status: number, standsFor: TryResult | null = null): RetryVerdict {
    const policy = this.policy;
    if (policy === undefined) return RetryVerdict.Relay;
    statusResult.status = status;
    if (
      !retriableResult(policy, statusResult) &&
      (standsFor === null || !retriableResult(policy, standsFor))
    ) return RetryVerdict.Relay;
    return this.tryIndex >= policy.attempts ? RetryVerdict.RelayExhausted : RetryVerdict.Retry;
  }

  /** After a try that failed; `result` is its retry condition (null: none applies). */
  afterFailure(result: TryResult | null): RetryVerdict {
    const policy = this.policy;
    if (policy === undefined || result === null || !retriableResult(policy, result)) {
      return RetryVerdict.Reply;
    }
    return this.tryIndex >= policy.attempts ? RetryVerdict.ReplyExhausted : RetryVerdict.Retry;
  }

  /** Moves to the next try; returns its index (the retry's number, from 1). */
  next(): number {
    return ++this.tryIndex;
  }
}
