/**
 * @module
 * Policy replication over libp2p (the only libp2p import in the repo). Every local change is
 * published on the gossipsub topic `weft/policy/1` as a signed cbor message; remote changes
 * are merged into the store by last-writer-wins. Because pubsub is best effort, nodes also
 * run anti-entropy over the stream protocol `/weft/sync/1`: exchange a summary (key +
 * timestamp of every entry), then each side sends what the other lacks. Sync runs on connect,
 * periodically, and whenever membership shows a peer whose store digest differs.
 *
 * Discovery is not libp2p's job here: SWIM membership advertises each node's multiaddr and
 * the composition root calls {@linkcode PolicyReplicator.dial}. Malformed input on the topic
 * or the sync protocol is rejected, counted and logged at debug level; it never throws out.
 */
import { createLibp2p, type Libp2p } from "libp2p";
import { tcp } from "@libp2p/tcp";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { identify } from "@libp2p/identify";
import { type GossipSub, gossipsub, TopicValidatorResult } from "@libp2p/gossipsub";
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from "@libp2p/crypto/keys";
import { multiaddr } from "@multiformats/multiaddr";
import {
  type Clock,
  type Counter,
  decodeEnvelope,
  DecodeError,
  encodeEnvelope,
  errorMessage,
  type Logger,
  parseHostPort,
  realClock,
  Registry,
  silentLogger,
} from "../lib/mod.ts";
import {
  decodeEntry,
  decodeSummary,
  diffSummary,
  encodeEntry,
  type ReplicatedEntry,
  type ReplicatedStore,
} from "../lib/store/mod.ts";

/** Gossipsub topic of policy changes (the version is part of the name, as libp2p does). */
export const policyTopic = "weft/policy/1";
/** Anti-entropy stream protocol. */
export const syncProtocol = "/weft/sync/1";

const wireVersion = 1;
const msgChanges = 1;
const msgSyncRequest = 10;
const msgSyncResponse = 11;
const msgSyncPush = 12;
/** Sent by the server once the pushed entries are merged, so a finished sync means both sides hold the union. */
const msgSyncAck = 13;
/** Upper bound of one sync frame; a store of a few thousand resources fits comfortably. */
const maxFrameBytes = 64 * 1024 * 1024;

/** Options of {@linkcode PolicyReplicator.start}. */
export interface PolicyReplicatorOptions {
  store: ReplicatedStore;
  /** `HOST:PORT` to listen on (port 0 picks a free one). */
  listenAddr: string;
  /**
   * File holding this node's libp2p private key (protobuf), created on first start, so the
   * peer id (and thus message signatures) stay stable across restarts. Omit for an
   * ephemeral key (tests).
   */
  keyFile?: string;
  clock?: Clock;
  log?: Logger;
  metrics?: Registry;
  /**
   * Anti-entropy with one random connected peer this often. Pubsub carries changes within
   * milliseconds; this only repairs losses, so 30 s (memberlist's push-pull period) suffices.
   */
  syncIntervalMs?: number;
  /** Abort a sync exchange that takes longer than this. */
  syncTimeoutMs?: number;
  /** A peer with a differing digest is synced at most this often (digests lag by design). */
  digestSyncMinIntervalMs?: number;
}

/** Counters of what the replicator did; also exported as metrics. */
export interface ReplicatorCounters {
  published: number;
  received: number;
  rejectedMessages: number;
  syncs: number;
  syncFailures: number;
  rejectedSync: number;
  /** Entries of sync batches refused one by one (the rest of their batch merged). */
  rejectedSyncEntries: number;
}

type ByteChunk = { subarray(): Uint8Array };

/** Reads length-prefixed frames (u32 BE) from a libp2p stream. */
class FrameReader {
  #iter: AsyncIterator<ByteChunk>;
  #buf = new Uint8Array(0);

  constructor(stream: AsyncIterable<ByteChunk>) {
    this.#iter = stream[Symbol.asyncIterator]();
  }

  async #fill(n: number): Promise<boolean> {
    while (this.#buf.length < n) {
      const r = await this.#iter.next();
      if (r.done) return false;
      const chunk = r.value.subarray();
      const next = new Uint8Array(this.#buf.length + chunk.length);
      next.set(this.#buf);
      next.set(chunk, this.#buf.length);
      this.#buf = next;
    }
    return true;
  }

  /** The next frame, or a DecodeError when the stream ends early or the length is absurd. */
  async next(): Promise<Uint8Array> {
    if (!(await this.#fill(4))) throw new DecodeError("Stream ended before a frame");
    const len = new DataView(this.#buf.buffer, this.#buf.byteOffset).getUint32(0);
    if (len > maxFrameBytes) throw new DecodeError(`Frame of ${len} bytes exceeds the limit`);
    if (!(await this.#fill(4 + len))) throw new DecodeError("Stream ended inside a frame");
    const frame = this.#buf.slice(4, 4 + len);
    this.#buf = this.#buf.slice(4 + len);
    return frame;
  }
}

function frame(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length);
  out.set(bytes, 4);
  return out;
}

function decodeEntries(raw: unknown): ReplicatedEntry[] {
  if (!Array.isArray(raw)) throw new DecodeError("Entries are not an array");
  return raw.map(decodeEntry);
}

/**
 * The entries of a sync batch that decode, and what was wrong with the others. A sync carries
 * a peer's whole difference: one entry this node refuses (an older peer may hold one over
 * today's limits) must not stop every other entry from converging, nor fail every later sync.
 */
export function decodeSyncEntries(
  raw: unknown,
): { entries: ReplicatedEntry[]; refused: string[] } {
  if (!Array.isArray(raw)) throw new DecodeError("Entries are not an array");
  const entries: ReplicatedEntry[] = [];
  const refused: string[] = [];
  for (const item of raw) {
    try {
      entries.push(decodeEntry(item));
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      refused.push(err.message);
    }
  }
  return { entries, refused };
}

/** Decodes a policy topic message; throws DecodeError for anything malformed. */
export function decodeChangeMessage(bytes: Uint8Array): ReplicatedEntry[] {
  const { type, body } = decodeEnvelope(bytes, wireVersion);
  if (type !== msgChanges) throw new DecodeError(`Unexpected message type ${type}`);
  return decodeEntries(body);
}

/** Encodes entries as a policy topic message. */
export function encodeChangeMessage(entries: readonly ReplicatedEntry[]): Uint8Array {
  return encodeEnvelope(wireVersion, msgChanges, entries.map(encodeEntry));
}

function toListenMultiaddr(listenAddr: string): string {
  const hp = parseHostPort(listenAddr);
  if (typeof hp === "string") throw new Error(`p2p listen address: ${hp}`);
  const proto = hp.hostname.includes(":") ? "ip6" : "ip4";
  return `/${proto}/${hp.hostname}/tcp/${hp.port}`;
}

async function loadOrCreateKey(keyFile: string | undefined) {
  if (!keyFile) return await generateKeyPair("Ed25519");
  try {
    return privateKeyFromProtobuf(await Deno.readFile(keyFile));
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      throw new Error(`cannot read libp2p key ${keyFile}: ${errorMessage(err)}`);
    }
  }
  const key = await generateKeyPair("Ed25519");
  const tmp = `${keyFile}.tmp`;
  await Deno.writeFile(tmp, privateKeyToProtobuf(key), { mode: 0o600 });
  await Deno.rename(tmp, keyFile);
  return key;
}

type Node = Libp2p<{ identify: unknown; pubsub: GossipSub }>;

/** The policy replication node. */
export class PolicyReplicator {
  readonly counters: ReplicatorCounters = {
    published: 0,
    received: 0,
    rejectedMessages: 0,
    syncs: 0,
    syncFailures: 0,
    rejectedSync: 0,
    rejectedSyncEntries: 0,
  };
  readonly #node: Node;
  readonly #store: ReplicatedStore;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #syncIntervalMs: number;
  readonly #syncTimeoutMs: number;
  readonly #digestSyncMinIntervalMs: number;
  readonly #metrics: { messages: Counter; syncs: Counter };
  readonly #unsubscribe: () => void;
  #pending: ReplicatedEntry[] = [];
  #flushScheduled = false;
  #timer: number | undefined;
  #stopped = false;
  readonly #lastDigestSync = new Map<string, number>();
  readonly #inflight = new Set<Promise<unknown>>();

  private constructor(node: Node, options: PolicyReplicatorOptions) {
    this.#node = node;
    this.#store = options.store;
    this.#clock = options.clock ?? realClock;
    this.#log = options.log ?? silentLogger;
    this.#syncIntervalMs = options.syncIntervalMs ?? 30_000;
    this.#syncTimeoutMs = options.syncTimeoutMs ?? 10_000;
    this.#digestSyncMinIntervalMs = options.digestSyncMinIntervalMs ?? 1_000;
    const registry = options.metrics ?? new Registry();
    this.#metrics = {
      messages: registry.counter(
        "weft_policy_messages_total",
        "Policy topic messages by result (published, accepted, rejected).",
      ),
      syncs: registry.counter(
        "weft_policy_sync_total",
        "Anti-entropy exchanges by result (ok, failed, rejected).",
      ),
    };
    this.#unsubscribe = this.#store.onChange((ev) => {
      if (ev.source === "local") this.#queuePublish(ev.entry);
    });
  }

  /** Starts the libp2p node, subscribes to the topic and registers the sync protocol. */
  static async start(options: PolicyReplicatorOptions): Promise<PolicyReplicator> {
    const privateKey = await loadOrCreateKey(options.keyFile);
    const node = await createLibp2p({
      privateKey,
      addresses: { listen: [toListenMultiaddr(options.listenAddr)] },
      transports: [tcp()],
      connectionManager: {
        // libp2p rejects more than 5 new connections per second from one host; several
        // nodes on one host (tests, dev clusters, many agents behind one NAT) exceed that
        // when membership makes them all dial at once. Peers come from membership anyway.
        inboundConnectionThreshold: 100,
        maxIncomingPendingConnections: 64,
      },
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: {
        identify: identify(),
        pubsub: gossipsub({
          globalSignaturePolicy: "StrictSign",
          // A change made while alone must not fail; sync delivers it when peers arrive.
          allowPublishToZeroTopicPeers: true,
          emitSelf: false,
          scoreParams: {
            // Gossipsub penalises more than 10 peers sharing an IP (a Sybil defence for open
            // networks). Weft's peers are cluster members that membership told us about, and
            // many may share a host or NAT; with the penalty, 20 nodes on one host graylist
            // each other and stop relaying.
            IPColocationFactorWeight: 0,
          },
        }),
      },
    }) as unknown as Node;
    const r = new PolicyReplicator(node, options);
    await r.#wire();
    return r;
  }

  async #wire(): Promise<void> {
    const pubsub = this.#node.services.pubsub;
    // The validator decides before gossipsub forwards: invalid messages are dropped and
    // their sender's score is lowered, so garbage does not spread through the mesh.
    const decoded = new WeakMap<Uint8Array, ReplicatedEntry[]>();
    pubsub.topicValidators.set(policyTopic, (_peer, msg) => {
      try {
        decoded.set(msg.data, decodeChangeMessage(msg.data));
        return TopicValidatorResult.Accept;
      } catch (err) {
        this.counters.rejectedMessages++;
        this.#metrics.messages.with({ result: "rejected" }).inc();
        this.#log.debug("rejected policy message", { reason: errorMessage(err) });
        return TopicValidatorResult.Reject;
      }
    });
    pubsub.addEventListener("message", (evt) => {
      const msg = evt.detail;
      if (msg.topic !== policyTopic) return;
      let entries = decoded.get(msg.data);
      if (!entries) {
        try {
          entries = decodeChangeMessage(msg.data);
        } catch {
          return; // already counted by the validator
        }
      }
      this.counters.received++;
      this.#metrics.messages.with({ result: "accepted" }).inc();
      this.#track(
        this.#store.merge(entries).catch((err) =>
          this.#log.error("merging policy message failed", { error: errorMessage(err) })
        ),
      );
    });
    pubsub.subscribe(policyTopic);
    await this.#node.handle(syncProtocol, (stream) => {
      this.#track(this.#serveSync(stream));
    });
    this.#node.addEventListener("peer:connect", (evt) => {
      const peer = evt.detail;
      this.#track(this.#syncPeer(peer).catch(() => {}));
    });
    this.#scheduleSync();
  }

  #track(p: Promise<unknown>): void {
    this.#inflight.add(p);
    p.finally(() => this.#inflight.delete(p));
  }

  /** This node's libp2p peer id. */
  get peerId(): string {
    return this.#node.peerId.toString();
  }

  /** Listening multiaddrs including `/p2p/<peerId>`. */
  multiaddrs(): string[] {
    return this.#node.getMultiaddrs().map((m) => m.toString());
  }

  /**
   * The multiaddr to advertise in membership metadata. When listening on a wildcard address
   * the caller passes the host other nodes reach this one by.
   */
  advertisedAddr(host?: string): string {
    const addrs = this.#node.getMultiaddrs();
    if (addrs.length === 0) throw new Error("libp2p node is not listening");
    if (!host) return addrs[0].toString();
    const port = addrs[0].getComponents().find((c) => c.name === "tcp")?.value;
    const proto = host.includes(":") ? "ip6" : "ip4";
    return `/${proto}/${host}/tcp/${port}/p2p/${this.peerId}`;
  }

  /** Peers this node is connected to. */
  connectedPeers(): string[] {
    return this.#node.getPeers().map((p) => p.toString());
  }

  /** Peers known to subscribe to the policy topic (they receive published changes). */
  topicPeers(): string[] {
    return this.#node.services.pubsub.getSubscribers(policyTopic).map((p) => p.toString());
  }

  /** Connects to a peer (from membership metadata); a no-op when already connected. */
  async dial(addr: string): Promise<void> {
    const ma = multiaddr(addr);
    if (ma.getComponents().some((c) => c.name === "p2p" && c.value === this.peerId)) return;
    await this.#node.dial(ma, { signal: AbortSignal.timeout(this.#syncTimeoutMs) });
  }

  /**
   * Membership reported `digest` for the peer at `addr`: sync with it when it differs from
   * ours (rate limited per peer, since gossip lags behind the store by design).
   */
  noteMemberDigest(addr: string, digest: string): void {
    if (this.#stopped || digest === this.#store.digest()) return;
    const now = this.#clock.now();
    const last = this.#lastDigestSync.get(addr);
    if (last !== undefined && now - last < this.#digestSyncMinIntervalMs) return;
    this.#lastDigestSync.set(addr, now);
    this.#track(this.syncWith(addr).catch(() => {}));
  }

  #queuePublish(entry: ReplicatedEntry): void {
    this.#pending.push({
      key: entry.key,
      ts: entry.ts,
      origin: entry.origin,
      resource: entry.resource,
    });
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // Changes of one apply arrive in one synchronous burst: publish them as one message.
    queueMicrotask(() => {
      this.#flushScheduled = false;
      const batch = this.#pending;
      this.#pending = [];
      if (this.#stopped || batch.length === 0) return;
      this.#track(
        this.#node.services.pubsub.publish(policyTopic, encodeChangeMessage(batch)).then(() => {
          this.counters.published++;
          this.#metrics.messages.with({ result: "published" }).inc();
        }).catch((err) => {
          this.#log.warn("publishing policy change failed", { error: errorMessage(err) });
        }),
      );
    });
  }

  #scheduleSync(): void {
    if (this.#stopped) return;
    this.#timer = this.#clock.setTimeout(() => {
      const peers = this.#node.getPeers();
      if (peers.length > 0) {
        const peer = peers[Math.floor(Math.random() * peers.length)];
        this.#track(this.#syncPeer(peer).catch(() => {}));
      }
      this.#scheduleSync();
    }, this.#syncIntervalMs);
  }

  /** Runs one anti-entropy exchange with the peer at `addr` (a multiaddr with `/p2p/`). */
  syncWith(addr: string): Promise<{ received: number; sent: number }> {
    return this.#syncPeer(multiaddr(addr));
  }

  async #syncPeer(
    target: Parameters<Node["dialProtocol"]>[0],
  ): Promise<{ received: number; sent: number }> {
    if (this.#stopped) return { received: 0, sent: 0 };
    const signal = AbortSignal.timeout(this.#syncTimeoutMs);
    try {
      const stream = await this.#node.dialProtocol(target, syncProtocol, { signal });
      const abort = () => stream.abort(new Error("sync timed out"));
      signal.addEventListener("abort", abort);
      try {
        const reader = new FrameReader(stream);
        stream.send(frame(encodeEnvelope(wireVersion, msgSyncRequest, {
          digest: this.#store.digest(),
          summary: this.#store.summary(),
        })));
        const resp = decodeEnvelope(await reader.next(), wireVersion);
        if (resp.type !== msgSyncResponse || !resp.body || typeof resp.body !== "object") {
          throw new DecodeError("Unexpected sync response");
        }
        const body = resp.body as { entries?: unknown; want?: unknown };
        const entries = this.#syncEntries(body.entries);
        const want = Array.isArray(body.want) ? body.want.filter((k) => typeof k === "string") : [];
        const push: ReplicatedEntry[] = [];
        for (const key of want) {
          const e = this.#store.entry(key);
          if (e) push.push(e);
        }
        stream.send(frame(encodeEnvelope(wireVersion, msgSyncPush, push.map(encodeEntry))));
        await this.#store.merge(entries);
        const ack = decodeEnvelope(await reader.next(), wireVersion);
        if (ack.type !== msgSyncAck) throw new DecodeError("Unexpected sync acknowledgement");
        await stream.close({ signal });
        this.counters.syncs++;
        this.#metrics.syncs.with({ result: "ok" }).inc();
        return { received: entries.length, sent: push.length };
      } finally {
        signal.removeEventListener("abort", abort);
      }
    } catch (err) {
      this.counters.syncFailures++;
      this.#metrics.syncs.with({ result: "failed" }).inc();
      this.#log.debug("sync failed", { error: errorMessage(err) });
      throw err;
    }
  }

  /** A sync batch's valid entries; the refused ones are counted and logged, each once. */
  #syncEntries(raw: unknown): ReplicatedEntry[] {
    const { entries, refused } = decodeSyncEntries(raw);
    for (const reason of refused) {
      this.counters.rejectedSyncEntries++;
      this.#metrics.syncs.with({ result: "entry_refused" }).inc();
      this.#log.warn("replicated policy entry refused", { reason });
    }
    return entries;
  }

  async #serveSync(
    stream: Parameters<Parameters<Node["handle"]>[1]>[0],
  ): Promise<void> {
    const timer = this.#clock.setTimeout(
      () => stream.abort(new Error("sync timed out")),
      this.#syncTimeoutMs,
    );
    try {
      const reader = new FrameReader(stream);
      const req = decodeEnvelope(await reader.next(), wireVersion);
      if (req.type !== msgSyncRequest || !req.body || typeof req.body !== "object") {
        throw new DecodeError("Unexpected sync request");
      }
      const summary = decodeSummary((req.body as { summary?: unknown }).summary);
      const { toSend, toFetch } = diffSummary(this.#store, summary);
      stream.send(frame(encodeEnvelope(wireVersion, msgSyncResponse, {
        entries: toSend.map(encodeEntry),
        want: toFetch,
      })));
      const push = decodeEnvelope(await reader.next(), wireVersion);
      if (push.type !== msgSyncPush) throw new DecodeError("Unexpected sync push");
      const entries = this.#syncEntries(push.body);
      await this.#store.merge(entries);
      stream.send(frame(encodeEnvelope(wireVersion, msgSyncAck, null)));
      await stream.close();
    } catch (err) {
      if (err instanceof DecodeError) {
        this.counters.rejectedSync++;
        this.#metrics.syncs.with({ result: "rejected" }).inc();
        this.#log.debug("rejected sync input", { reason: err.message });
      }
      stream.abort(err instanceof Error ? err : new Error(String(err)));
    } finally {
      this.#clock.clearTimeout(timer);
    }
  }

  /** Stops the node: no more publishing or syncing; waits for work in flight. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#unsubscribe();
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    await this.#node.stop();
    await Promise.allSettled([...this.#inflight]);
  }
}
