/**
 * @module
 * Passive health checking with Envoy's consecutive-error outlier detection (what Istio's
 * DestinationRule `outlierDetection` configures). The proxy reports how each exchange with an
 * endpoint ended; an endpoint that fails too often in a row is ejected (taken out of its
 * cluster's balancer) for `baseEjectionTime * times ejected`, capped at `maxEjectionTime`.
 *
 * What counts, as in Envoy (`DetectorHostMonitorImpl::putHttpResponseCode` / `putResult`):
 * - Any 5xx counts towards `consecutive5xxErrors`; a 502/503/504 also towards
 *   `consecutiveGatewayErrors`, which any other status resets (a 500 resets only the gateway
 *   count). A status below 500 resets both.
 * - Local-origin failures (connect failure, reset before a response, timeout) count as a 503
 *   (connect failure, reset) or 504 (timeout) when `splitExternalLocalOriginErrors` is false.
 *   When it is true they count only towards `consecutiveLocalOriginFailures`, which a received
 *   response (of any status) resets.
 * - Reaching a threshold ejects the endpoint unless that would put more than
 *   `maxEjectionPercent` of the cluster's endpoints in ejection (Envoy >= 1.27 checks the
 *   percentage after the ejection, so with Istio's default 10% a cluster of fewer than ten
 *   endpoints never ejects). The counter is reset either way, so the next ejection needs a new
 *   run of failures.
 *
 * Timing: Envoy lifts ejections and decays each endpoint's ejection count on a timer every
 * `interval`. Weft does both lazily and exactly: {@linkcode OutlierDetector.nextExpiry} tells
 * the cluster when the next ejection ends (checked on the request path with one comparison),
 * and the ejection count of an endpoint decays by one per `interval` it spent un-ejected, worked
 * out when it is next ejected. No timers, so nothing to stop and tests run on a FakeClock.
 */
import type { OutlierDetectionConfig } from "../lib/mod.ts";

/** A failure the proxy itself observed, before any response from the endpoint. */
export type LocalOriginFailure = "connect" | "reset" | "timeout";

/** Per-endpoint counters; kept for endpoints that stay across snapshot swaps. */
interface EndpointRecord {
  consecutive5xx: number;
  consecutiveGateway: number;
  consecutiveLocalOrigin: number;
  /** Envoy's ejection multiplier: ejections not yet decayed away. */
  ejections: number;
  /** When the current ejection ends; 0 when not ejected. */
  ejectedUntil: number;
  /** When the multiplier last changed or the endpoint was returned, for lazy decay. */
  decayFrom: number;
}

/** Counters an operator can read (`weft` status, tests). */
export interface OutlierStats {
  /** Endpoints ejected now. */
  readonly ejectedNow: number;
  /** Ejections carried out since the detector was created. */
  readonly ejectionsTotal: number;
  /** Ejections skipped because `maxEjectionPercent` was reached (Envoy `ejections_overflow`). */
  readonly ejectionsOverflow: number;
}

/** Consecutive-error outlier detection for the endpoints of one cluster. */
export class OutlierDetector {
  #config: OutlierDetectionConfig;
  readonly #records = new Map<string, EndpointRecord>();
  /** Number of endpoints of the cluster now, the base of `maxEjectionPercent`. */
  #endpointCount = 0;
  #ejectedNow = 0;
  #ejectionsTotal = 0;
  #ejectionsOverflow = 0;
  /** Earliest end of a current ejection; Infinity when none is ejected. */
  nextExpiry = Infinity;

  constructor(config: OutlierDetectionConfig) {
    this.#config = config;
  }

  get config(): OutlierDetectionConfig {
    return this.#config;
  }

  /**
   * Takes new settings (a snapshot swap). Counters and current ejections carry over; an
   * ejection ends at the time it was given, as Envoy keeps a host's ejection when the cluster's
   * outlier settings change.
   */
  configure(config: OutlierDetectionConfig): void {
    this.#config = config;
  }

  /**
   * Sets the cluster's endpoints (by key): records of endpoints that left are dropped, so an
   * endpoint that comes back starts clean; new ones start with no failures.
   */
  setEndpoints(keys: readonly string[]): void {
    this.#endpointCount = keys.length;
    const live = new Set(keys);
    for (const key of this.#records.keys()) {
      if (!live.has(key)) this.#records.delete(key);
    }
    this.#recount();
  }

  /** True when `key` is ejected now (as of the last {@linkcode refresh}). */
  isEjected(key: string): boolean {
    const r = this.#records.get(key);
    return r !== undefined && r.ejectedUntil > 0;
  }

  /** Keys of the endpoints ejected now. */
  ejectedKeys(): string[] {
    const out: string[] = [];
    for (const [key, r] of this.#records) if (r.ejectedUntil > 0) out.push(key);
    return out;
  }

  get stats(): OutlierStats {
    return {
      ejectedNow: this.#ejectedNow,
      ejectionsTotal: this.#ejectionsTotal,
      ejectionsOverflow: this.#ejectionsOverflow,
    };
  }

  #record(key: string): EndpointRecord {
    let r = this.#records.get(key);
    if (!r) {
      r = {
        consecutive5xx: 0,
        consecutiveGateway: 0,
        consecutiveLocalOrigin: 0,
        ejections: 0,
        ejectedUntil: 0,
        decayFrom: 0,
      };
      this.#records.set(key, r);
    }
    return r;
  }

  /**
   * Records a response status from endpoint `key` at time `now`. Returns true when the
   * endpoint was ejected by it (the caller then takes it out of the balancer).
   */
  reportStatus(key: string, status: number, now: number): boolean {
    const c = this.#config;
    if (status < 500) {
      // The common case: nothing to do unless a run of failures is to be broken.
      const r = this.#records.get(key);
      if (r !== undefined) {
        r.consecutive5xx = 0;
        r.consecutiveGateway = 0;
        r.consecutiveLocalOrigin = 0;
      }
      return false;
    }
    const r = this.#record(key);
    if (c.splitExternalLocalOriginErrors) r.consecutiveLocalOrigin = 0;
    return this.#countError(r, status === 502 || status === 503 || status === 504, now);
  }

  /**
   * Records a failure the proxy observed itself (no response from `key`). Returns true when the
   * endpoint was ejected by it.
   */
  reportLocalFailure(key: string, _failure: LocalOriginFailure, now: number): boolean {
    const c = this.#config;
    const r = this.#record(key);
    if (c.splitExternalLocalOriginErrors) {
      r.consecutiveLocalOrigin++;
      const limit = c.consecutiveLocalOriginFailures;
      if (limit > 0 && r.consecutiveLocalOrigin >= limit) {
        r.consecutiveLocalOrigin = 0;
        return this.#eject(r, now);
      }
      return false;
    }
    // Envoy maps connect failures and resets to 503 and timeouts to 504: every kind is a
    // gateway error, so the kind does not change the count (it documents the call site).
    return this.#countError(r, true, now);
  }

  #countError(r: EndpointRecord, gateway: boolean, now: number): boolean {
    const c = this.#config;
    if (r.ejectedUntil > 0) return false; // already out: late answers of requests in flight
    r.consecutive5xx++;
    if (gateway) r.consecutiveGateway++;
    else r.consecutiveGateway = 0;
    if (c.consecutiveGatewayErrors > 0 && r.consecutiveGateway >= c.consecutiveGatewayErrors) {
      r.consecutiveGateway = 0;
      return this.#eject(r, now);
    }
    if (c.consecutive5xxErrors > 0 && r.consecutive5xx >= c.consecutive5xxErrors) {
      r.consecutive5xx = 0;
      return this.#eject(r, now);
    }
    return false;
  }

  #eject(r: EndpointRecord, now: number): boolean {
    const c = this.#config;
    if (r.ejectedUntil > 0) return false;
    const total = this.#endpointCount;
    if (total === 0 || (100 * (this.#ejectedNow + 1)) / total > c.maxEjectionPercent) {
      this.#ejectionsOverflow++;
      return false;
    }
    // Decay: one ejection forgiven per interval spent back in service (Envoy >= 1.20).
    if (r.ejections > 0 && c.intervalMs > 0) {
      const forgiven = Math.floor((now - r.decayFrom) / c.intervalMs);
      r.ejections = Math.max(0, r.ejections - forgiven);
    }
    // Envoy stops raising the multiplier once the ejection time reaches its cap.
    if (c.baseEjectionTimeMs * r.ejections < c.maxEjectionTimeMs) r.ejections++;
    const duration = Math.min(c.baseEjectionTimeMs * r.ejections, c.maxEjectionTimeMs);
    r.ejectedUntil = now + Math.max(1, duration);
    r.consecutive5xx = 0;
    r.consecutiveGateway = 0;
    r.consecutiveLocalOrigin = 0;
    this.#ejectedNow++;
    this.#ejectionsTotal++;
    if (r.ejectedUntil < this.nextExpiry) this.nextExpiry = r.ejectedUntil;
    return true;
  }

  /**
   * Returns endpoints whose ejection has ended by `now` to service. Returns true when any was
   * returned (the caller then gives them back to the balancer).
   */
  refresh(now: number): boolean {
    if (now < this.nextExpiry) return false;
    let returned = false;
    for (const r of this.#records.values()) {
      if (r.ejectedUntil > 0 && r.ejectedUntil <= now) {
        r.ejectedUntil = 0;
        r.decayFrom = now;
        returned = true;
      }
    }
    this.#recount();
    return returned;
  }

  /** Recomputes the ejected count and the next expiry from the records. */
  #recount(): void {
    let ejected = 0;
    let next = Infinity;
    for (const r of this.#records.values()) {
      if (r.ejectedUntil > 0) {
        ejected++;
        if (r.ejectedUntil < next) next = r.ejectedUntil;
      }
    }
    this.#ejectedNow = ejected;
    this.nextExpiry = next;
  }
}
