/**
 * @module
 * Active health checks of this node's own service instances (Consul's model: the node that
 * runs a service checks it and tells the cluster through its gossip metadata). HTTP services
 * are probed with `GET http://host:port/path`; TCP services with a plain connect.
 *
 * Choices:
 * - A probe passes on 2xx, and also on 429: Consul calls 429 "warning", and warning instances
 *   still receive traffic, so a rate-limited instance is not pulled out (which would push its
 *   load onto the others). Any other status, a connect error or the timeout is a failure.
 * - Every instance starts healthy and is marked unhealthy only after `unhealthyThreshold`
 *   consecutive failures. Consul starts checks "critical"; starting healthy avoids a blackout
 *   of every instance while a cluster boots.
 * - Checks of one service never overlap: the next one is scheduled `intervalMs` after the
 *   previous finished (or timed out), the first one right away.
 */
import type { Clock, HealthCheck, LocalService, Logger, Registry } from "../lib/mod.ts";
import { errorMessage, realClock, silentLogger } from "../lib/mod.ts";

/** A local service with a health check. */
export type CheckedService = LocalService & { check: HealthCheck };

/** Runs one probe; resolves true when it passed. `signal` aborts it (timeout or stop). */
export type HealthProbe = (service: CheckedService, signal: AbortSignal) => Promise<boolean>;

/** Construction options of a {@linkcode HealthChecker}. */
export interface HealthCheckerOptions {
  metrics: Registry;
  /** Called when a service's verdict flips (not on every check). */
  onChange: (service: string, healthy: boolean) => void;
  clock?: Clock;
  logger?: Logger;
  /** Replaces the HTTP/TCP probe (unit tests). */
  probe?: HealthProbe;
}

/** Whether a service has a check this module can run. */
export function isChecked(s: LocalService): s is CheckedService {
  return s.check !== undefined && (s.protocol === "tcp" || s.check.path !== undefined);
}

/** The default probe: HTTP GET for HTTP services, a TCP connect for TCP ones. */
export async function defaultProbe(s: CheckedService, signal: AbortSignal): Promise<boolean> {
  if (s.protocol === "tcp") {
    const conn = await abortable(Deno.connect({ hostname: s.host, port: s.port }), signal);
    conn.close();
    return true;
  }
  const host = s.host.includes(":") ? `[${s.host}]` : s.host;
  const res = await fetch(`http://${host}:${s.port}${s.check.path}`, {
    signal,
    // One connection per check: a pooled idle connection would outlive stop().
    headers: { connection: "close", "user-agent": "weft-health-check" },
  });
  await res.body?.cancel();
  return (res.status >= 200 && res.status < 300) || res.status === 429;
}

/** Rejects when `signal` aborts; a value that arrives later is closed if it is closable. */
function abortable<T extends { close(): void }>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason ?? new Error("aborted"));
    if (signal.aborted) onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    p.then((v) => {
      signal.removeEventListener("abort", onAbort);
      if (signal.aborted) v.close();
      else resolve(v);
    }, (err) => {
      signal.removeEventListener("abort", onAbort);
      reject(err);
    });
  });
}

interface CheckState {
  service: CheckedService;
  /** JSON of what the check depends on: an unchanged service keeps its state on update. */
  identity: string;
  healthy: boolean;
  passes: number;
  failures: number;
  timer?: number;
  /** The timeout of the probe in flight; cleared by stop() at once, not when the probe ends. */
  timeoutTimer?: number;
  inFlight?: AbortController;
  stopped: boolean;
}

/** Runs the health checks of the local services and reports verdict changes. */
export class HealthChecker {
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #probe: HealthProbe;
  readonly #onChange: (service: string, healthy: boolean) => void;
  readonly #status;
  readonly #failuresTotal;
  readonly #states = new Map<string, CheckState>();

  constructor(services: readonly LocalService[], o: HealthCheckerOptions) {
    this.#clock = o.clock ?? realClock;
    this.#log = o.logger ?? silentLogger;
    this.#probe = o.probe ?? defaultProbe;
    this.#onChange = o.onChange;
    this.#status = o.metrics.gauge(
      "weft_health_check_status",
      "Active health check verdict of a local service: 1 healthy, 0 unhealthy.",
    );
    this.#failuresTotal = o.metrics.counter(
      "weft_health_check_failures_total",
      "Failed active health checks of a local service.",
    );
    this.update(services);
  }

  /** Whether `service` currently passes (services without a check always do). */
  healthy(service: string): boolean {
    return this.#states.get(service)?.healthy ?? true;
  }

  /** Names of the checked services that are currently unhealthy. */
  unhealthy(): Set<string> {
    return new Set([...this.#states.values()].filter((s) => !s.healthy).map((s) => s.service.name));
  }

  /**
   * Applies a new service list (reload): unchanged checks keep their state and schedule, new
   * ones start healthy, removed ones stop (reported healthy if they were not, so callers can
   * forget them).
   */
  update(services: readonly LocalService[]): void {
    const next = new Map<string, CheckedService>();
    for (const s of services) if (isChecked(s)) next.set(s.name, s);
    for (const [name, state] of this.#states) {
      const s = next.get(name);
      if (s && identityOf(s) === state.identity) continue;
      this.#halt(state);
      this.#states.delete(name);
      if (!state.healthy) this.#onChange(name, true);
    }
    for (const [name, s] of next) {
      if (this.#states.has(name)) continue;
      const state: CheckState = {
        service: s,
        identity: identityOf(s),
        healthy: true,
        passes: 0,
        failures: 0,
        stopped: false,
      };
      this.#states.set(name, state);
      this.#status.with({ service: name }).set(1);
      this.#schedule(state, 0);
    }
  }

  /** Stops every check: clears timers and aborts probes in flight. */
  stop(): void {
    for (const state of this.#states.values()) this.#halt(state);
    this.#states.clear();
  }

  #halt(state: CheckState): void {
    state.stopped = true;
    if (state.timer !== undefined) this.#clock.clearTimeout(state.timer);
    state.timer = undefined;
    if (state.timeoutTimer !== undefined) this.#clock.clearTimeout(state.timeoutTimer);
    state.timeoutTimer = undefined;
    state.inFlight?.abort(new Error("health checker stopped"));
    state.inFlight = undefined;
  }

  #schedule(state: CheckState, delayMs: number): void {
    state.timer = this.#clock.setTimeout(() => {
      state.timer = undefined;
      this.#run(state);
    }, delayMs);
  }

  async #run(state: CheckState): Promise<void> {
    const { check } = state.service;
    const controller = new AbortController();
    state.inFlight = controller;
    state.timeoutTimer = this.#clock.setTimeout(
      () => controller.abort(new Error(`timed out after ${check.timeoutMs} ms`)),
      check.timeoutMs,
    );
    let passed = false;
    let reason = "";
    try {
      // The race makes the timeout hold even for a probe that ignores its signal.
      passed = await new Promise<boolean>((resolve, reject) => {
        controller.signal.addEventListener("abort", () => reject(controller.signal.reason), {
          once: true,
        });
        this.#probe(state.service, controller.signal).then(resolve, reject);
      });
      if (!passed) reason = "check did not pass";
    } catch (err) {
      reason = errorMessage(err);
    } finally {
      if (state.timeoutTimer !== undefined) this.#clock.clearTimeout(state.timeoutTimer);
      state.timeoutTimer = undefined;
    }
    if (state.stopped) return;
    state.inFlight = undefined;
    this.#record(state, passed, reason);
    this.#schedule(state, check.intervalMs);
  }

  #record(state: CheckState, passed: boolean, reason: string): void {
    const { name, check } = state.service;
    if (passed) {
      state.failures = 0;
      state.passes++;
      if (!state.healthy && state.passes >= check.healthyThreshold) this.#flip(state, true, "");
      return;
    }
    this.#failuresTotal.with({ service: name }).inc();
    state.passes = 0;
    state.failures++;
    if (state.healthy && state.failures >= check.unhealthyThreshold) {
      this.#flip(state, false, reason);
    }
  }

  #flip(state: CheckState, healthy: boolean, reason: string): void {
    const name = state.service.name;
    state.healthy = healthy;
    this.#status.with({ service: name }).set(healthy ? 1 : 0);
    if (healthy) this.#log.info("health check passing", { service: name });
    else this.#log.warn("health check failing", { service: name, reason });
    this.#onChange(name, healthy);
  }
}

function identityOf(s: CheckedService): string {
  return JSON.stringify([s.host, s.port, s.protocol, s.check]);
}
