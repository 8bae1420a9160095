/**
 * @module
 * In-memory network for deterministic cluster tests: every delivery is a timer on a
 * {@linkcode FakeClock}, with configurable latency, random loss (seeded) and partitions.
 */
import type { HostPort } from "../lib/address.ts";
import type { Clock } from "../lib/clock.ts";
import type { RequestHandler, Transport } from "./transport.ts";

/** Small deterministic PRNG (mulberry32) so lossy tests replay exactly. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A simulated network shared by many {@linkcode MockTransport}s. */
export class MockNetwork {
  readonly #nodes = new Map<string, MockTransport>();
  /** Pairs `a|b` that cannot talk (both directions). */
  readonly #blocked = new Set<string>();
  /** Probability that one datagram is dropped. Streams are not lossy (TCP retransmits). */
  loss = 0;
  /** Probability that a reliable request fails (connection reset), to stress fallbacks. */
  streamLoss = 0;
  /** One-way delay of every delivery. */
  latencyMs = 1;
  /**
   * Extra delay before a node handles what reaches it, by address: models an overloaded
   * node whose event loop runs late (the case Lifeguard's local health score is for).
   */
  readonly processingDelayMs = new Map<string, number>();
  /** Datagrams handed to the network and delivered, for assertions. */
  sent = 0;
  delivered = 0;
  readonly random: () => number;

  constructor(readonly clock: Clock, seed = 1) {
    this.random = seededRandom(seed);
  }

  /** Creates a transport at `addr` (e.g. `10.0.0.1:7946`; any unique string works). */
  bind(addr: string): MockTransport {
    if (this.#nodes.has(addr)) throw new Error(`mock address ${addr} already bound`);
    const t = new MockTransport(this, addr);
    this.#nodes.set(addr, t);
    return t;
  }

  /** Cuts every link between group `a` and group `b`. */
  partition(a: readonly string[], b: readonly string[]): void {
    for (const x of a) for (const y of b) this.#blocked.add(pairKey(x, y));
  }

  /** Restores every link. */
  heal(): void {
    this.#blocked.clear();
  }

  /** @internal */
  unbind(addr: string): void {
    this.#nodes.delete(addr);
  }

  /** @internal True when `from` can reach a live transport at `to`. */
  reachable(from: string, to: string): MockTransport | undefined {
    if (this.#blocked.has(pairKey(from, to))) return undefined;
    return this.#nodes.get(to);
  }
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

/** One node's endpoint on a {@linkcode MockNetwork}. */
export class MockTransport implements Transport {
  #packetHandler: (from: string, bytes: Uint8Array) => void = () => {};
  #requestHandler: RequestHandler | undefined;
  #closed = false;

  constructor(private readonly net: MockNetwork, readonly addr: string) {}

  localAddr(): HostPort {
    const i = this.addr.lastIndexOf(":");
    return { hostname: this.addr.slice(0, i), port: Number(this.addr.slice(i + 1)) };
  }

  sendPacket(to: string, bytes: Uint8Array): void {
    if (this.#closed) return;
    this.net.sent++;
    if (this.net.loss > 0 && this.net.random() < this.net.loss) return;
    const copy = bytes.slice();
    this.net.clock.setTimeout(() => {
      const dest = this.net.reachable(this.addr, to);
      if (!dest || dest.#closed) return;
      this.net.delivered++;
      dest.#packetHandler(this.addr, copy);
    }, this.net.latencyMs + (this.net.processingDelayMs.get(to) ?? 0));
  }

  onPacket(handler: (from: string, bytes: Uint8Array) => void): void {
    this.#packetHandler = handler;
  }

  request(to: string, bytes: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const clock = this.net.clock;
    return new Promise((resolve, reject) => {
      let done = false;
      const timer = clock.setTimeout(() => {
        if (done) return;
        done = true;
        reject(new Error(`request to ${to} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      const finish = (fn: () => void) => {
        if (done) return;
        done = true;
        clock.clearTimeout(timer);
        fn();
      };
      if (this.net.streamLoss > 0 && this.net.random() < this.net.streamLoss) {
        clock.setTimeout(() => finish(() => reject(new Error(`connection to ${to} reset`))), 1);
        return;
      }
      clock.setTimeout(() => {
        const dest = this.net.reachable(this.addr, to);
        const handler = dest && !dest.#closed ? dest.#requestHandler : undefined;
        if (!handler) {
          // A refused connection fails fast, like TCP RST; a partition times out instead.
          if (!dest) return;
          finish(() => reject(new Error(`connection to ${to} refused`)));
          return;
        }
        handler(this.addr, bytes.slice()).then(
          (reply) =>
            clock.setTimeout(() => {
              if (this.net.reachable(to, this.addr)) finish(() => resolve(reply));
            }, this.net.latencyMs + (this.net.processingDelayMs.get(this.addr) ?? 0)),
          (err) => finish(() => reject(err)),
        );
      }, this.net.latencyMs + (this.net.processingDelayMs.get(to) ?? 0));
    });
  }

  onRequest(handler: RequestHandler): void {
    this.#requestHandler = handler;
  }

  close(): Promise<void> {
    this.#closed = true;
    this.net.unbind(this.addr);
    return Promise.resolve();
  }
}
