/**
 * @module
 * The SWIM failure detector and membership state machine with Lifeguard extensions, modelled
 * on HashiCorp memberlist (state.go): round-robin probes over a shuffled list, indirect probes
 * with nacks, suspicion with confirmations, incarnation-based refutation, piggy-backed and
 * periodic gossip, TCP push-pull anti-entropy, seed join with backoff and a background re-join
 * of seeds so a split cluster heals once the network does.
 *
 * Members are keyed by name. Each carries a stable node id and its process start time: a node
 * restarted with the same name and a new id replaces the old entry (newer start wins), a node
 * restarted with the same id refutes its old state with a higher incarnation.
 */
import type { Clock, TimerId } from "../lib/clock.ts";
import { DecodeError, encodeValue } from "../lib/codec.ts";
import type { Logger } from "../lib/log.ts";
import type { CounterChild, Registry } from "../lib/metrics.ts";
import { parseHostPort } from "../lib/address.ts";
import { Awareness } from "./awareness.ts";
import type { GossipConfig } from "./config.ts";
import { Keyring } from "./keyring.ts";
import {
  type Alive,
  compoundOverhead,
  compoundPartOverhead,
  type Dead,
  decodePacket,
  decodeStreamMessage,
  encodeCompound,
  encodeMessage,
  type IndirectPing,
  type MemberMeta,
  memberMetaSchema,
  type Message,
  MessageType,
  type Ping,
  type PushPullMember,
  type Suspect,
} from "./messages.ts";
import { BroadcastQueue } from "./queue.ts";
import { Suspicion, suspicionTimeoutMs } from "./suspicion.ts";
import type { Transport } from "./transport.ts";

/** Lifecycle state of a member as seen by this node. */
export type MemberState = "alive" | "suspect" | "dead" | "left";

/** A read-only view of one member. */
export interface MemberView {
  name: string;
  id: string;
  /** Gossip address `HOST:PORT`. */
  address: string;
  state: MemberState;
  incarnation: number;
  metadata: MemberMeta;
}

/** What happened to a member. */
export type MemberEventKind = "join" | "update" | "alive" | "suspect" | "dead" | "left" | "reaped";

/** A membership change delivered to {@linkcode Membership.onChange} listeners. */
export interface MemberEvent {
  kind: MemberEventKind;
  member: MemberView;
}

/** Everything a {@linkcode Membership} needs; time, randomness and network are injected. */
export interface MembershipOptions {
  config: GossipConfig;
  name: string;
  nodeId: string;
  /** Our gossip address as others reach it (`HOST:PORT`). */
  advertise: string;
  metadata: MemberMeta;
  transport: Transport;
  keyring?: Keyring;
  clock: Clock;
  logger: Logger;
  metrics: Registry;
  /** Uniform [0, 1); seeded in tests so runs replay. */
  random?: () => number;
}

interface MemberRecord {
  name: string;
  id: string;
  addr: string;
  inc: number;
  started: number;
  state: MemberState;
  meta: MemberMeta;
  stateChange: number;
  suspicion?: Suspicion;
}

interface AckWaiter {
  onAck: () => void;
  onNack?: () => void;
  timer: TimerId;
}

/** Upper bound for the metadata of one node, so an alive message fits one packet. */
export const maxMetadataBytes = 1024;

/** memberlist's pushPullScale: above 32 members, stretch the period by log2(n) - log2(32) + 1. */
export function pushPullScale(intervalMs: number, n: number): number {
  const threshold = 32;
  if (n <= threshold) return intervalMs;
  return Math.ceil(Math.log2(n) - Math.log2(threshold) + 1) * intervalMs;
}

/** The SWIM + Lifeguard membership protocol for one node. */
export class Membership {
  readonly #cfg: GossipConfig;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #transport: Transport;
  readonly #keyring?: Keyring;
  readonly #random: () => number;
  readonly #self: MemberRecord;
  readonly #members = new Map<string, MemberRecord>();
  readonly #listeners = new Set<(e: MemberEvent) => void>();
  readonly #acks = new Map<number, AckWaiter>();
  readonly #awareness: Awareness;
  readonly #queue: BroadcastQueue;
  #probeList: string[] = [];
  #probeIndex = 0;
  #seq = 0;
  #timers = new Set<TimerId>();
  readonly #sleepers = new Set<() => void>();
  #running = false;
  #stopped = false;
  #leaving = false;
  #seeds: string[] = [];
  readonly #m: {
    received: CounterChild;
    sent: CounterChild;
    dropped: (reason: string) => CounterChild;
    pushPulls: CounterChild;
    refutes: CounterChild;
  };
  readonly #metrics: Registry;

  constructor(opts: MembershipOptions) {
    this.#cfg = opts.config;
    this.#clock = opts.clock;
    this.#log = opts.logger;
    this.#transport = opts.transport;
    this.#keyring = opts.keyring;
    this.#random = opts.random ?? Math.random;
    this.#metrics = opts.metrics;
    this.#awareness = new Awareness(opts.config.awarenessMaxMultiplier);
    this.#queue = new BroadcastQueue(opts.config.retransmitMult, () => this.#liveCount());
    const meta = this.#checkMetadata(opts.metadata);
    this.#self = {
      name: opts.name,
      id: opts.nodeId,
      addr: opts.advertise,
      inc: 0,
      started: opts.clock.wallNow(),
      state: "alive",
      meta,
      stateChange: opts.clock.now(),
    };
    this.#members.set(opts.name, this.#self);
    const dropped = opts.metrics.counter(
      "weft_gossip_packets_dropped_total",
      "Gossip packets dropped, by reason (malformed, key, version, unknown, oversized).",
    );
    const droppedByReason = new Map<string, CounterChild>();
    this.#m = {
      received: opts.metrics.counter(
        "weft_gossip_packets_received_total",
        "Gossip packets received.",
      )
        .with(),
      sent: opts.metrics.counter("weft_gossip_packets_sent_total", "Gossip packets sent.").with(),
      dropped: (reason) => {
        let c = droppedByReason.get(reason);
        if (!c) droppedByReason.set(reason, c = dropped.with({ reason }));
        return c;
      },
      pushPulls: opts.metrics.counter("weft_gossip_push_pull_total", "Push-pull exchanges.")
        .with(),
      refutes: opts.metrics.counter("weft_gossip_refutes_total", "Suspicions refuted by us.")
        .with(),
    };
    this.#transport.onPacket((from, bytes) => this.#onPacket(from, bytes));
    this.#transport.onRequest((from, bytes) => this.#onRequest(from, bytes));
  }

  // ---------------------------------------------------------------- public API

  /** Starts probing, gossip, push-pull and background seed re-join. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule(() => this.#probeTick(), this.#jitter(this.#cfg.probeIntervalMs));
    this.#schedule(() => this.#gossipTick(), this.#jitter(this.#cfg.gossipIntervalMs));
    this.#schedule(() => this.#pushPullTick(), this.#jitter(this.#cfg.pushPullIntervalMs));
    this.#schedule(() => this.#rejoinTick(), this.#jitter(this.#cfg.rejoinIntervalMs));
  }

  /**
   * Joins through `seeds` (`HOST:PORT`): push-pull with each, retrying the whole list with
   * backoff. Resolves with the number of seeds that answered; rejects with a clear message
   * naming every seed and its failure when none did. The seeds are kept for background
   * re-join.
   */
  async join(seeds: readonly string[], attempts = 3): Promise<number> {
    const targets: string[] = [];
    for (const s of seeds) {
      const a = parseHostPort(s);
      if (typeof a === "string") throw new Error(`--join: ${a}`);
      targets.push(s.trim());
    }
    for (const t of targets) if (!this.#seeds.includes(t)) this.#seeds.push(t);
    const others = targets.filter((t) => t !== this.#self.addr);
    if (others.length === 0) return 0;
    const failures = new Map<string, string>();
    let backoff = this.#cfg.probeIntervalMs / 2;
    for (let attempt = 0; attempt < attempts; attempt++) {
      const results = await Promise.allSettled(others.map((t) => this.#pushPull(t, true)));
      let ok = 0;
      results.forEach((r, i) => {
        if (r.status === "fulfilled") ok++;
        else {failures.set(
            others[i],
            r.reason instanceof Error ? r.reason.message : String(r.reason),
          );}
      });
      if (ok > 0) return ok;
      if (attempt + 1 < attempts) {
        await this.#sleep(backoff);
        if (this.#stopped) break;
        backoff *= 2;
      }
    }
    const why = [...failures].map(([s, e]) => `${s} (${e})`).join(", ");
    throw new Error(`join failed: no seed answered after ${attempts} attempts: ${why}`);
  }

  /**
   * Gracefully leaves: announces `left` and waits until the announcement was gossiped enough
   * (or `timeoutMs` passed). The node keeps answering probes until {@linkcode stop}.
   */
  async leave(timeoutMs: number): Promise<void> {
    if (this.#leaving) return;
    this.#leaving = true;
    const d: Dead = {
      name: this.#self.name,
      id: this.#self.id,
      inc: this.#self.inc,
      from: this.#self.name,
      left: true,
    };
    this.#deadNode(d);
    if (this.#liveCount() <= 1) return;
    const deadline = this.#clock.now() + timeoutMs;
    // Push the announcement out right away rather than waiting for the next gossip tick, and
    // tell up to 64 live members directly: a leave is rare, and a lost or dead-routed gossip
    // packet would otherwise turn a clean leave into a failure detection (memberlist relies
    // on gossip alone here).
    this.#gossipOnce();
    const announcement = encodeMessage({ type: MessageType.Dead, body: d });
    const live = this.#pickRandom(64, (m) => m.state === "alive" && m !== this.#self);
    for (const m of live) this.#send(m.addr, [announcement], false);
    while (this.#clock.now() < deadline && this.#queue.transmitsOf(this.#self.name) !== undefined) {
      await this.#sleep(Math.min(this.#cfg.gossipIntervalMs, deadline - this.#clock.now()));
    }
  }

  /** Stops every timer and closes the transport. */
  async stop(): Promise<void> {
    this.#running = false;
    this.#stopped = true;
    for (const wake of [...this.#sleepers]) wake();
    for (const t of this.#timers) this.#clock.clearTimeout(t);
    this.#timers.clear();
    for (const w of this.#acks.values()) this.#clock.clearTimeout(w.timer);
    this.#acks.clear();
    for (const m of this.#members.values()) m.suspicion?.cancel();
    this.#queue.clear();
    await this.#transport.close();
  }

  /** Every known member including this node, sorted by name. */
  members(): MemberView[] {
    return [...this.#members.values()].map(view).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** This node's own view. */
  self(): MemberView {
    return view(this.#self);
  }

  /** Registers a change listener; returns a function that removes it. */
  onChange(cb: (e: MemberEvent) => void): () => void {
    this.#listeners.add(cb);
    return () => this.#listeners.delete(cb);
  }

  /** Replaces our metadata, bumps our incarnation and gossips it. */
  setMetadata(meta: MemberMeta): void {
    this.#self.meta = this.#checkMetadata(meta);
    this.#self.inc++;
    this.#broadcastAlive();
    this.#emit("update", this.#self);
  }

  /** Lifeguard local health score (0 = healthy). */
  get healthScore(): number {
    return this.#awareness.score;
  }

  /** Updates waiting in the broadcast queue (tests, metrics). */
  get queuedBroadcasts(): number {
    return this.#queue.length;
  }

  // ---------------------------------------------------------------- helpers

  #checkMetadata(meta: MemberMeta): MemberMeta {
    const r = memberMetaSchema.safeParse(meta);
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new Error(`metadata.${issue.path.join(".")}: ${issue.message}`);
    }
    const size = encodeValue(r.data).length;
    if (size > maxMetadataBytes) {
      throw new Error(`metadata: encoded size ${size} bytes exceeds ${maxMetadataBytes}`);
    }
    return r.data;
  }

  #schedule(fn: () => void, ms: number): void {
    const id = this.#clock.setTimeout(() => {
      this.#timers.delete(id);
      if (this.#running) fn();
    }, ms);
    this.#timers.add(id);
  }

  /** A clock sleep that also ends when the node stops, so join/leave never hang on stop. */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        this.#clock.clearTimeout(id);
        this.#timers.delete(id);
        this.#sleepers.delete(wake);
        resolve();
      };
      const id = this.#clock.setTimeout(wake, ms);
      this.#timers.add(id);
      this.#sleepers.add(wake);
    });
  }

  /** Spreads the first tick of periodic work so nodes started together do not align. */
  #jitter(ms: number): number {
    return Math.floor(ms * (0.5 + this.#random() / 2));
  }

  #liveCount(): number {
    let n = 0;
    for (const m of this.#members.values()) if (m.state === "alive" || m.state === "suspect") n++;
    return n;
  }

  #emit(kind: MemberEventKind, m: MemberRecord): void {
    this.#updateGauges();
    const e = { kind, member: view(m) };
    for (const l of this.#listeners) {
      try {
        l(e);
      } catch (err) {
        this.#log.error("member change listener failed", { error: String(err) });
      }
    }
  }

  #updateGauges(): void {
    const g = this.#metrics.gauge("weft_gossip_members", "Known members by state.");
    const counts: Record<MemberState, number> = { alive: 0, suspect: 0, dead: 0, left: 0 };
    for (const m of this.#members.values()) counts[m.state]++;
    for (const s of Object.keys(counts) as MemberState[]) g.with({ state: s }).set(counts[s]);
    this.#metrics.gauge("weft_gossip_health_score", "Lifeguard local health (0 = healthy).")
      .set(this.#awareness.score);
  }

  #pickRandom(k: number, accept: (m: MemberRecord) => boolean): MemberRecord[] {
    const pool = [...this.#members.values()].filter((m) => m !== this.#self && accept(m));
    for (let i = pool.length - 1; i > 0; i--) {
      const j = Math.floor(this.#random() * (i + 1));
      [pool[i], pool[j]] = [pool[j], pool[i]];
    }
    return pool.slice(0, k);
  }

  #aliveMessage(m: MemberRecord): Alive {
    return { name: m.name, id: m.id, inc: m.inc, addr: m.addr, started: m.started, meta: m.meta };
  }

  #broadcastAlive(): void {
    const a = this.#aliveMessage(this.#self);
    this.#queue.enqueue(a.name, encodeMessage({ type: MessageType.Alive, body: a }));
  }

  #refute(accusedInc: number): void {
    this.#self.inc = Math.max(this.#self.inc, accusedInc) + 1;
    this.#awareness.apply(1);
    this.#m.refutes.inc();
    this.#broadcastAlive();
  }

  // ---------------------------------------------------------------- packets

  /** Sends `parts` plus as many queued broadcasts as fit in one packet. */
  #send(to: string, parts: Uint8Array[], piggyback = true): void {
    const overheadKey = this.#keyring ? Keyring.overhead : 0;
    let used = overheadKey + compoundOverhead;
    for (const p of parts) used += p.length + compoundPartOverhead;
    const all = piggyback
      ? parts.concat(this.#queue.take(compoundPartOverhead, this.#cfg.packetSize - used))
      : parts;
    if (all.length === 0) return;
    const packet = encodeCompound(all);
    this.#m.sent.inc();
    if (!this.#keyring) {
      this.#transport.sendPacket(to, packet);
      return;
    }
    this.#keyring.encrypt(packet).then(
      (sealed) => this.#transport.sendPacket(to, sealed),
      () => this.#m.dropped("encrypt").inc(),
    );
  }

  #onPacket(from: string, bytes: Uint8Array): void {
    if (!this.#running && !this.#leaving) return;
    this.#m.received.inc();
    if (bytes.length > this.#cfg.packetSize + 512) {
      this.#m.dropped("oversized").inc();
      return;
    }
    if (!this.#keyring) {
      this.#handlePacket(from, bytes);
      return;
    }
    this.#keyring.decrypt(bytes).then((plain) => {
      if (!plain) this.#m.dropped("key").inc();
      else if (this.#running) this.#handlePacket(from, plain);
    }, () => this.#m.dropped("key").inc());
  }

  #handlePacket(from: string, bytes: Uint8Array): void {
    let msgs: Message[];
    try {
      msgs = decodePacket(bytes, this.#cfg.packetSize + 512);
    } catch (err) {
      const reason = err instanceof DecodeError && /version/.test(err.message)
        ? "version"
        : err instanceof DecodeError && /unknown message type/.test(err.message)
        ? "unknown"
        : "malformed";
      this.#m.dropped(reason).inc();
      if (this.#log.enabled("debug")) {
        this.#log.debug("dropped gossip packet", { from, reason: String(err) });
      }
      return;
    }
    for (const msg of msgs) {
      try {
        this.#handleMessage(from, msg);
      } catch (err) {
        // A bug in one handler must not take the node down; count it and move on.
        this.#m.dropped("handler").inc();
        this.#log.error("gossip message handler failed", { from, error: String(err) });
      }
    }
  }

  #handleMessage(from: string, msg: Message): void {
    switch (msg.type) {
      case MessageType.Ping:
        return this.#onPing(from, msg.body);
      case MessageType.IndirectPing:
        return this.#onIndirectPing(from, msg.body);
      case MessageType.Ack: {
        const w = this.#acks.get(msg.body.seq);
        if (w) w.onAck();
        return;
      }
      case MessageType.Nack: {
        const w = this.#acks.get(msg.body.seq);
        if (w?.onNack) w.onNack();
        return;
      }
      case MessageType.Alive:
        return this.#aliveNode(msg.body);
      case MessageType.Suspect:
        return this.#suspectNode(msg.body);
      case MessageType.Dead:
        return this.#deadNode(msg.body);
      case MessageType.PushPull:
        this.#m.dropped("unexpected").inc(); // push-pull travels over streams only
        return;
    }
  }

  #onPing(from: string, p: Ping): void {
    if (p.target !== this.#self.name) {
      // Someone probes a node that used to live at this address; answering would hide its death.
      this.#m.dropped("wrong_target").inc();
      return;
    }
    this.#send(from, [encodeMessage({ type: MessageType.Ack, body: { seq: p.seq } })]);
  }

  #onIndirectPing(from: string, r: IndirectPing): void {
    const seq = this.#seq++;
    const reply = (type: MessageType.Ack | MessageType.Nack) =>
      this.#send(from, [encodeMessage({ type, body: { seq: r.seq } })]);
    this.#expectAck(seq, this.#cfg.probeTimeoutMs, () => reply(MessageType.Ack), undefined, () => {
      if (r.nack) reply(MessageType.Nack);
    });
    const ping: Ping = { seq, target: r.target, from: this.#self.name, fromAddr: this.#self.addr };
    this.#send(r.targetAddr, [encodeMessage({ type: MessageType.Ping, body: ping })]);
  }

  #expectAck(
    seq: number,
    timeoutMs: number,
    onAck: () => void,
    onNack?: () => void,
    onTimeout?: () => void,
  ): void {
    const timer = this.#clock.setTimeout(() => {
      this.#acks.delete(seq);
      onTimeout?.();
    }, timeoutMs);
    this.#acks.set(seq, {
      timer,
      onNack,
      onAck: () => {
        this.#clock.clearTimeout(timer);
        this.#acks.delete(seq);
        onAck();
      },
    });
  }

  // ---------------------------------------------------------------- probing

  async #probeTick(): Promise<void> {
    const started = this.#clock.now();
    try {
      await this.#probeOnce();
    } catch (err) {
      this.#log.error("probe failed", { error: String(err) });
    }
    if (!this.#running) return;
    const elapsed = this.#clock.now() - started;
    this.#schedule(() => this.#probeTick(), Math.max(0, this.#cfg.probeIntervalMs - elapsed));
  }

  #nextProbeTarget(): MemberRecord | undefined {
    for (let checked = 0; checked <= this.#probeList.length; checked++) {
      if (this.#probeIndex >= this.#probeList.length) {
        this.#resetProbeList();
        if (this.#probeList.length === 0) return undefined;
      }
      const m = this.#members.get(this.#probeList[this.#probeIndex++]);
      if (m && m !== this.#self && (m.state === "alive" || m.state === "suspect")) return m;
    }
    return undefined;
  }

  /** Reshuffles the probe order (memberlist's resetNodes). */
  #resetProbeList(): void {
    const names = [...this.#members.keys()].filter((n) => n !== this.#self.name);
    for (let i = names.length - 1; i > 0; i--) {
      const j = Math.floor(this.#random() * (i + 1));
      [names[i], names[j]] = [names[j], names[i]];
    }
    this.#probeList = names;
    this.#probeIndex = 0;
  }

  #probeOnce(): Promise<void> {
    const target = this.#nextProbeTarget();
    if (!target) return Promise.resolve();
    const probeTimeout = this.#awareness.scale(this.#cfg.probeTimeoutMs);
    const interval = this.#awareness.scale(this.#cfg.probeIntervalMs);
    const seq = this.#seq++;
    const targetInc = target.inc;
    return new Promise<void>((resolve) => {
      let done = false;
      let nacks = 0;
      let expectedNacks = 0;
      const finish = (ok: boolean) => {
        if (done) return;
        done = true;
        this.#clock.clearTimeout(indirectTimer);
        this.#clock.clearTimeout(deadlineTimer);
        this.#timers.delete(indirectTimer);
        this.#timers.delete(deadlineTimer);
        const w = this.#acks.get(seq);
        if (w) {
          this.#clock.clearTimeout(w.timer);
          this.#acks.delete(seq);
        }
        if (ok) {
          this.#awareness.apply(-1);
        } else if (this.#running) {
          // Lifeguard: missing nacks mean our own network or CPU may be the problem.
          this.#awareness.apply(expectedNacks > 0 ? Math.max(0, expectedNacks - nacks) : 1);
          this.#suspectNode({
            name: target.name,
            id: target.id,
            inc: targetInc,
            from: this.#self.name,
          });
        }
        resolve();
      };
      this.#expectAck(seq, interval, () => finish(true), () => nacks++);
      const ping: Ping = {
        seq,
        target: target.name,
        from: this.#self.name,
        fromAddr: this.#self.addr,
      };
      const parts = [encodeMessage({ type: MessageType.Ping, body: ping })];
      if (target.state === "suspect") {
        // Tell a suspect directly, so it can refute even if gossip about it was lost.
        const s: Suspect = {
          name: target.name,
          id: target.id,
          inc: target.inc,
          from: this.#self.name,
        };
        parts.push(encodeMessage({ type: MessageType.Suspect, body: s }));
      }
      this.#send(target.addr, parts);
      const indirectTimer = this.#clock.setTimeout(() => {
        if (done || !this.#running) return;
        const relays = this.#pickRandom(
          this.#cfg.indirectChecks,
          (m) => m.state === "alive" && m !== target,
        );
        expectedNacks = relays.length;
        const req: IndirectPing = {
          seq,
          target: target.name,
          targetAddr: target.addr,
          nack: true,
          from: this.#self.name,
          fromAddr: this.#self.addr,
        };
        const bytes = encodeMessage({ type: MessageType.IndirectPing, body: req });
        for (const r of relays) this.#send(r.addr, [bytes]);
        // memberlist's TCP fallback probe: a reliable stream gets through the UDP loss that
        // fooled the direct and indirect probes.
        this.#streamPing(target, interval - probeTimeout).then((ok) => {
          if (ok) finish(true);
        });
      }, probeTimeout);
      const deadlineTimer = this.#clock.setTimeout(() => finish(false), interval);
      this.#timers.add(indirectTimer);
      this.#timers.add(deadlineTimer);
    });
  }

  async #streamPing(target: MemberRecord, timeoutMs: number): Promise<boolean> {
    if (timeoutMs <= 0) return false;
    const ping: Ping = {
      seq: this.#seq++,
      target: target.name,
      from: this.#self.name,
      fromAddr: this.#self.addr,
    };
    try {
      const req = await this.#seal(encodeMessage({ type: MessageType.Ping, body: ping }));
      const reply = await this.#open(await this.#transport.request(target.addr, req, timeoutMs));
      return reply.type === MessageType.Ack && reply.body.seq === ping.seq;
    } catch {
      return false;
    }
  }

  // ---------------------------------------------------------------- state changes

  #aliveNode(a: Alive): void {
    if (a.name === this.#self.name) {
      if (this.#leaving) return;
      if (a.id !== this.#self.id) {
        // Another process claims our name; the newer process wins everywhere.
        if (a.started < this.#self.started && a.inc >= this.#self.inc) this.#refute(a.inc);
        else if (a.started > this.#self.started) {
          this.#log.warn("a newer node with our name joined", { name: a.name, id: a.id });
        }
        return;
      }
      // An old incarnation of ourselves (e.g. before a restart): refute with a higher one.
      if (a.inc > this.#self.inc || (a.inc === this.#self.inc && a.started < this.#self.started)) {
        this.#refute(a.inc);
      }
      return;
    }
    let m = this.#members.get(a.name);
    if (m && m.id !== a.id) {
      const replaceable = m.state === "dead" || m.state === "left" || a.started > m.started;
      if (!replaceable) return;
      m.suspicion?.cancel();
      this.#members.delete(a.name);
      this.#log.info("member replaced by a new node id", { name: a.name, old: m.id, new: a.id });
      m = undefined;
    }
    if (!m) {
      const rec: MemberRecord = {
        name: a.name,
        id: a.id,
        addr: a.addr,
        inc: a.inc,
        started: a.started,
        state: "alive",
        meta: a.meta,
        stateChange: this.#clock.now(),
      };
      this.#members.set(a.name, rec);
      // Insert at a random position so the new member is probed within one round.
      const at = this.#probeIndex +
        Math.floor(this.#random() * (this.#probeList.length - this.#probeIndex + 1));
      this.#probeList.splice(at, 0, a.name);
      this.#queue.enqueue(a.name, encodeMessage({ type: MessageType.Alive, body: a }));
      this.#emit("join", rec);
      return;
    }
    const restarted = a.started > m.started;
    if (!restarted && a.inc <= m.inc) return;
    m.suspicion?.cancel();
    m.suspicion = undefined;
    const prev = m.state;
    m.inc = a.inc;
    m.addr = a.addr;
    m.meta = a.meta;
    m.started = a.started;
    m.state = "alive";
    if (prev !== "alive") m.stateChange = this.#clock.now();
    this.#queue.enqueue(a.name, encodeMessage({ type: MessageType.Alive, body: a }));
    this.#emit(prev === "alive" ? "update" : "alive", m);
  }

  #suspectNode(s: Suspect): void {
    const m = this.#members.get(s.name);
    if (!m || m.id !== s.id || s.inc < m.inc) return;
    if (m === this.#self) {
      if (!this.#leaving) this.#refute(s.inc);
      return;
    }
    if (m.state === "suspect" && m.suspicion) {
      if (s.inc === m.inc && m.suspicion.confirm(s.from)) {
        this.#queue.enqueue(s.name, encodeMessage({ type: MessageType.Suspect, body: s }));
      }
      return;
    }
    if (m.state !== "alive") return;
    m.inc = s.inc;
    m.state = "suspect";
    m.stateChange = this.#clock.now();
    this.#queue.enqueue(s.name, encodeMessage({ type: MessageType.Suspect, body: s }));
    const n = this.#liveCount();
    let k = this.#cfg.suspicionMult - 2;
    if (n - 2 < k) k = 0; // too few members to expect independent confirmations
    const min = suspicionTimeoutMs(this.#cfg.suspicionMult, n, this.#cfg.probeIntervalMs);
    const max = this.#cfg.suspicionMaxTimeoutMult * min;
    const inc = m.inc;
    m.suspicion = new Suspicion(this.#clock, s.from, k, min, max, () => {
      if (!this.#running || m.state !== "suspect" || m.inc !== inc) return;
      this.#log.info("suspect timed out, marking dead", { name: m.name });
      this.#deadNode({ name: m.name, id: m.id, inc, from: this.#self.name, left: false });
    });
    this.#emit("suspect", m);
  }

  #deadNode(d: Dead): void {
    const m = this.#members.get(d.name);
    if (!m || m.id !== d.id || d.inc < m.inc) return;
    if (m.state === "dead" || m.state === "left") return;
    // Only a node itself may announce that it left; anyone else's claim means failure.
    const left = d.left && d.from === d.name;
    if (m === this.#self && !this.#leaving) {
      this.#refute(d.inc);
      return;
    }
    m.suspicion?.cancel();
    m.suspicion = undefined;
    m.inc = d.inc;
    m.state = left ? "left" : "dead";
    m.stateChange = this.#clock.now();
    this.#queue.enqueue(d.name, encodeMessage({ type: MessageType.Dead, body: { ...d, left } }));
    this.#emit(m.state, m);
  }

  // ---------------------------------------------------------------- gossip

  #gossipTick(): void {
    this.#reap();
    this.#gossipOnce();
    this.#schedule(() => this.#gossipTick(), this.#cfg.gossipIntervalMs);
  }

  #gossipOnce(): void {
    if (this.#queue.length === 0) return;
    const now = this.#clock.now();
    const targets = this.#pickRandom(
      this.#cfg.gossipNodes,
      (m) =>
        m.state === "alive" || m.state === "suspect" ||
        now - m.stateChange < this.#cfg.gossipToTheDeadMs,
    );
    for (const t of targets) this.#send(t.addr, []);
  }

  /** Forgets dead and left members after the reclaim time, so their name can be reused. */
  #reap(): void {
    const now = this.#clock.now();
    for (const m of [...this.#members.values()]) {
      if (
        (m.state === "dead" || m.state === "left") && m !== this.#self &&
        now - m.stateChange > this.#cfg.deadReclaimMs
      ) {
        this.#members.delete(m.name);
        this.#emit("reaped", m);
      }
    }
  }

  // ---------------------------------------------------------------- push-pull

  #pushPullTick(): void {
    const [peer] = this.#pickRandom(1, (m) => m.state === "alive");
    if (peer) {
      this.#pushPull(peer.addr, false).catch((err) =>
        this.#log.debug("push-pull failed", { peer: peer.name, error: String(err) })
      );
    }
    this.#schedule(
      () => this.#pushPullTick(),
      pushPullScale(this.#cfg.pushPullIntervalMs, this.#liveCount()),
    );
  }

  /**
   * Memberlist's gap: a node that lost its seeds in a partition never looks for them again.
   * Here every seed that is not a live member in our view is contacted again periodically.
   */
  async #rejoinTick(): Promise<void> {
    const liveAddrs = new Set<string>();
    for (const m of this.#members.values()) {
      if (m.state === "alive" || m.state === "suspect") liveAddrs.add(m.addr);
    }
    for (const seed of this.#seeds) {
      if (seed === this.#self.addr || liveAddrs.has(seed)) continue;
      try {
        const refuted = await this.#pushPull(seed, false);
        // The seed's side thought we were dead: send it our refutation right away.
        if (refuted) await this.#pushPull(seed, false);
        this.#log.info("re-joined seed", { seed });
      } catch (err) {
        this.#log.debug("seed re-join failed", { seed, error: String(err) });
      }
    }
    if (this.#running) this.#schedule(() => this.#rejoinTick(), this.#cfg.rejoinIntervalMs);
  }

  #localState(join: boolean): Uint8Array {
    const members: PushPullMember[] = [...this.#members.values()].map((m) => ({
      name: m.name,
      id: m.id,
      inc: m.inc,
      addr: m.addr,
      started: m.started,
      state: m.state,
      meta: m.meta,
    }));
    return encodeMessage({ type: MessageType.PushPull, body: { join, members } });
  }

  async #seal(bytes: Uint8Array): Promise<Uint8Array> {
    return this.#keyring ? await this.#keyring.encrypt(bytes) : bytes;
  }

  async #open(bytes: Uint8Array): Promise<Message> {
    let plain: Uint8Array | undefined = bytes;
    if (this.#keyring) {
      plain = await this.#keyring.decrypt(bytes);
      if (!plain) {
        this.#m.dropped("key").inc();
        throw new Error("push-pull message not encrypted with a known key");
      }
    }
    try {
      return decodeStreamMessage(plain);
    } catch (err) {
      this.#m.dropped("malformed").inc();
      throw err;
    }
  }

  /** One push-pull exchange; resolves true when the remote state made us refute. */
  async #pushPull(addr: string, join: boolean): Promise<boolean> {
    const req = await this.#seal(this.#localState(join));
    const reply = await this.#transport.request(addr, req, this.#cfg.tcpTimeoutMs);
    const msg = await this.#open(reply);
    if (msg.type !== MessageType.PushPull) throw new Error("unexpected push-pull reply type");
    this.#m.pushPulls.inc();
    return this.#merge(msg.body.members);
  }

  async #onRequest(_from: string, bytes: Uint8Array): Promise<Uint8Array> {
    if (!this.#running) throw new Error("not running");
    const msg = await this.#open(bytes);
    if (msg.type === MessageType.Ping) {
      if (msg.body.target !== this.#self.name) throw new Error("ping for another node");
      return await this.#seal(
        encodeMessage({ type: MessageType.Ack, body: { seq: msg.body.seq } }),
      );
    }
    if (msg.type !== MessageType.PushPull) {
      this.#m.dropped("unexpected").inc();
      throw new Error("unexpected stream message");
    }
    const reply = this.#localState(false);
    this.#m.pushPulls.inc();
    this.#merge(msg.body.members);
    return await this.#seal(reply);
  }

  /** memberlist's mergeState: remote dead is only a suspicion here. Returns true if refuted. */
  #merge(remote: readonly PushPullMember[]): boolean {
    const before = this.#self.inc;
    for (const r of remote) {
      try {
        if (r.state === "alive") {
          this.#aliveNode({
            name: r.name,
            id: r.id,
            inc: r.inc,
            addr: r.addr,
            started: r.started,
            meta: r.meta,
          });
        } else if (r.state === "left") {
          this.#deadNode({ name: r.name, id: r.id, inc: r.inc, from: r.name, left: true });
        } else {
          this.#suspectNode({ name: r.name, id: r.id, inc: r.inc, from: this.#self.name });
        }
      } catch (err) {
        this.#log.error("merging member state failed", { name: r.name, error: String(err) });
      }
    }
    return this.#self.inc !== before;
  }
}

function view(m: MemberRecord): MemberView {
  return {
    name: m.name,
    id: m.id,
    address: m.addr,
    state: m.state,
    incarnation: m.inc,
    metadata: m.meta,
  };
}
