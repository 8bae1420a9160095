/**
 * @module
 * Test support: a whole simulated cluster of {@linkcode GossipNode}s on a
 * {@linkcode MockNetwork} under a {@linkcode FakeClock}, stepped deterministically.
 */
import { FakeClock } from "../../lib/clock.ts";
import { silentLogger } from "../../lib/log.ts";
import { Registry } from "../../lib/metrics.ts";
import { defaultLanConfig, type GossipConfig } from "../../gossip/config.ts";
import type { Keyring } from "../../gossip/keyring.ts";
import type { MemberState } from "../../gossip/membership.ts";
import type { ServiceMeta } from "../../gossip/messages.ts";
import { MockNetwork, type MockTransport, seededRandom } from "../../gossip/mock_transport.ts";
import { GossipNode } from "../../gossip/mod.ts";

/** One simulated node. */
export interface SimNode {
  name: string;
  addr: string;
  node: GossipNode;
  transport: MockTransport;
  metrics: Registry;
}

/** Options for one simulated node. */
export interface SimNodeOptions {
  id?: string;
  addr?: string;
  services?: ServiceMeta[];
  keyring?: Keyring;
  config?: GossipConfig;
}

/** A deterministic in-memory cluster. */
export class SimCluster {
  readonly clock = new FakeClock();
  readonly net: MockNetwork;
  readonly nodes = new Map<string, SimNode>();
  readonly #random: () => number;
  #nextAddr = 1;
  /** Set when any node uses a keyring, so stepping also yields to WebCrypto. */
  encrypted = false;

  constructor(readonly config: GossipConfig = defaultLanConfig(), seed = 7) {
    this.net = new MockNetwork(this.clock, seed);
    this.#random = seededRandom(seed * 31 + 1);
  }

  /** Creates and starts a node (not joined). */
  async add(name: string, opts: SimNodeOptions = {}): Promise<SimNode> {
    const addr = opts.addr ?? `10.0.0.${this.#nextAddr++}:7946`;
    const transport = this.net.bind(addr);
    if (opts.keyring) this.encrypted = true;
    const metrics = new Registry();
    const node = await GossipNode.create({
      config: opts.config ?? this.config,
      name,
      nodeId: opts.id ?? `id-${name}`,
      bindAddr: transport.localAddr(),
      metadata: {
        inboundAddr: `${addr.split(":")[0]}:15001`,
        adminAddr: `${addr.split(":")[0]}:15000`,
        services: opts.services ?? [],
      },
      keyring: opts.keyring,
      transport,
      clock: this.clock,
      logger: silentLogger,
      metrics,
      random: this.#random,
    });
    node.start();
    const sim = { name, addr, node, transport, metrics };
    this.nodes.set(name, sim);
    return sim;
  }

  /** Advances simulated time by `ms` in `step` increments, letting promises run in between. */
  async run(ms: number, step = 10): Promise<void> {
    for (let t = 0; t < ms; t += step) {
      this.clock.advance(Math.min(step, ms - t));
      await flush(this.encrypted);
    }
  }

  /** Runs the clock until `p` settles (at most `maxMs` simulated), and returns its outcome. */
  async settle<T>(p: Promise<T>, maxMs = 60_000): Promise<T> {
    let done = false;
    const tracked = p.finally(() => done = true);
    tracked.catch(() => {});
    for (let t = 0; t < maxMs && !done; t += 10) {
      this.clock.advance(10);
      await flush(this.encrypted);
    }
    return await tracked;
  }

  /** Runs until `cond` holds, checking every `step` ms; returns the simulated ms it took. */
  async until(cond: () => boolean, maxMs: number, step = 50): Promise<number> {
    const start = this.clock.now();
    while (!cond()) {
      if (this.clock.now() - start > maxMs) {
        throw new Error(`condition not met within ${maxMs} simulated ms`);
      }
      await this.run(step, Math.min(step, 10));
    }
    return this.clock.now() - start;
  }

  /** State of `subject` as seen by `observer` (undefined when unknown). */
  stateOf(observer: string, subject: string): MemberState | undefined {
    return this.nodes.get(observer)?.node.members().find((m) => m.name === subject)?.state;
  }

  /** True when every listed node sees every other listed node alive. */
  converged(names: readonly string[] = [...this.nodes.keys()]): boolean {
    return names.every((o) => names.every((s) => this.stateOf(o, s) === "alive"));
  }

  /** Stops one node without leaving (a crash). */
  async crash(name: string): Promise<void> {
    const n = this.nodes.get(name);
    if (!n) return;
    this.nodes.delete(name);
    await n.node.stop();
  }

  async stopAll(): Promise<void> {
    for (const n of this.nodes.values()) await n.node.stop();
    this.nodes.clear();
  }
}

/**
 * Lets pending promise callbacks run. Microtasks are enough for plain clusters; WebCrypto
 * completes on a real event-loop turn, so encrypted clusters also yield a macrotask.
 */
export async function flush(macrotask = false): Promise<void> {
  if (macrotask) await new Promise((resolve) => setTimeout(resolve, 0));
  for (let i = 0; i < 40; i++) await Promise.resolve();
}
