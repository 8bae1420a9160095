/**
 * @module
 * The replicated policy store: a last-writer-wins map keyed `kind/namespace/name`. Each value
 * carries a hybrid-logical-clock timestamp and its origin node; the winner of two writes is
 * the greater (timestamp, node id), so every node picks the same one whatever the order of
 * arrival. Deletes are tombstones, collected after a grace period. Writes are validated by
 * the caller, persisted (fsync) and only then visible and acknowledged; change events feed
 * replication and the snapshot compiler.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { type Clock, realClock } from "../clock.ts";
import { DecodeError } from "../codec.ts";
import { errorMessage, type FieldIssue, UserError } from "../errors.ts";
import { type Logger, silentLogger } from "../log.ts";
import type { Resource } from "../resources/kind.ts";
import {
  RESOURCE_LIMITS,
  resourceLimitIssues,
  type ResourceLimits,
  storeLimitIssue,
} from "../resources/limits.ts";
import { resourceKey, validateResource } from "../resources/registry.ts";
import { compareHlc, type HlcTimestamp, HybridLogicalClock } from "./hlc.ts";
import { PolicyLog } from "./persist.ts";

/** One key's state as replicated between nodes; `resource: null` is a tombstone. */
export interface ReplicatedEntry {
  readonly key: string;
  readonly ts: HlcTimestamp;
  /** Node id of the writer; breaks ties between equal timestamps. */
  readonly origin: string;
  readonly resource: Resource | null;
}

/** An entry as read from the disk before its resource is validated (see `PolicyStore.open`). */
export interface RawEntry {
  readonly key: string;
  readonly ts: HlcTimestamp;
  readonly origin: string;
  /** The resource as stored; `null` is a tombstone. */
  readonly resource: unknown;
}

/** A stored entry that was not restored because its resource is invalid. */
export interface QuarantinedEntry {
  readonly key: string;
  /** The first problem, `path: message` (e.g. `spec.hosts: at most 1000 hosts ...`). */
  readonly reason: string;
}

/** An entry as this node holds it, with local bookkeeping. */
export interface StoredEntry extends ReplicatedEntry {
  /** Store-wide sequence number of the change that produced this entry (like k8s resourceVersion). */
  readonly version: number;
  /** Local wall-clock ms when this node accepted it. */
  readonly acceptedAt: number;
}

/** Outcome of applying one resource. */
export type ApplyOutcome = "created" | "updated" | "unchanged";

/** Per-resource answer of {@linkcode PolicyStore.apply}. */
export interface ApplyResult {
  kind: string;
  namespace: string;
  name: string;
  result: ApplyOutcome;
}

/** A change that became visible in this store. */
export interface ChangeEvent {
  entry: StoredEntry;
  previous: StoredEntry | undefined;
  /** `local` for apply/delete here (to be published), `remote` for merged entries. */
  source: "local" | "remote";
}

/** `[key, wall, logical, origin, isTombstone]`: what sync exchanges before any content. */
export type SummaryItem = readonly [string, number, number, string, boolean];

/** The part of the store that replication needs (gossip/pubsub programs against this). */
export interface ReplicatedStore {
  readonly nodeId: string;
  /** Digest of the live content; equal digests mean equal live content. */
  digest(): string;
  /** Every key with its timestamp, tombstones included. */
  summary(): SummaryItem[];
  entry(key: string): ReplicatedEntry | undefined;
  /** Merges remote entries by LWW; returns those that won (and are now stored). */
  merge(entries: readonly ReplicatedEntry[]): Promise<ReplicatedEntry[]>;
  onChange(listener: (event: ChangeEvent) => void): () => void;
}

/** Options of {@linkcode PolicyStore.open}. */
export interface PolicyStoreOptions {
  /** This node's stable id (ties between equal timestamps are broken by it). */
  nodeId: string;
  clock?: Clock;
  /** Persist under `<dataDir>/policy/`; without it the store lives in memory only (tests). */
  dataDir?: string;
  log?: Logger;
  /**
   * How long tombstones are kept. A node that was away longer than this could resurrect a
   * deleted resource, so it is generous (Cassandra's gc_grace is 10 days; a day suits a mesh
   * whose nodes rejoin within hours).
   */
  tombstoneGraceMs?: number;
  /** Compact the log into a snapshot after this many records (bounds restart time). */
  compactAfterRecords?: number;
  /**
   * Every this often, collect expired tombstones and compact a non-empty log, so a quiet
   * node's restart stays fast too. 10 minutes: cheap, and far below the tombstone grace.
   * 0 disables it.
   */
  maintenanceIntervalMs?: number;
  /** Size limits of resources and of the store; `RESOURCE_LIMITS` unless a test shrinks them. */
  limits?: ResourceLimits;
}

/** Orders two entries by (timestamp, origin); positive when `a` wins. */
export function compareEntries(
  a: Pick<ReplicatedEntry, "ts" | "origin">,
  b: Pick<ReplicatedEntry, "ts" | "origin">,
): number {
  const c = compareHlc(a.ts, b.ts);
  if (c !== 0) return c;
  return a.origin < b.origin ? -1 : a.origin > b.origin ? 1 : 0;
}

/** JSON with sorted keys, so equal resources compare equal whatever their key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      return Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]]));
    }
    return v;
  });
}

/** Wire/disk form of an entry: `[key, wall, logical, origin, resource|null]`. */
export function encodeEntry(e: RawEntry): unknown {
  return [e.key, e.ts.wall, e.ts.logical, e.origin, e.resource];
}

/**
 * Decodes an entry's shape and timestamp, leaving its resource unvalidated: what the disk
 * gives back, so that one invalid resource is quarantined by `PolicyStore.open` rather than
 * failing its whole record. Throws {@linkcode DecodeError}.
 */
export function decodeRawEntry(raw: unknown): RawEntry {
  if (!Array.isArray(raw) || raw.length !== 5) throw new DecodeError("Entry is not a 5-tuple");
  const [key, wall, logical, origin, resource] = raw;
  if (typeof key !== "string" || key.length > 512) throw new DecodeError("Entry key invalid");
  if (!Number.isSafeInteger(wall) || wall < 0 || !Number.isSafeInteger(logical) || logical < 0) {
    throw new DecodeError("Entry timestamp invalid");
  }
  if (typeof origin !== "string" || origin.length === 0 || origin.length > 256) {
    throw new DecodeError("Entry origin invalid");
  }
  if (resource === null && key.split("/").length !== 3) {
    throw new DecodeError("Tombstone key invalid");
  }
  return { key, ts: { wall, logical }, origin, resource };
}

/**
 * Validates the resource of a raw entry (schema, checks and size limits) and that it belongs
 * at the entry's key. Returns the entry or the first problem as `path: message`.
 */
export function validateEntry(
  e: RawEntry,
  limits: ResourceLimits = RESOURCE_LIMITS,
): ReplicatedEntry | string {
  if (e.resource === null) return { key: e.key, ts: e.ts, origin: e.origin, resource: null };
  const validated = validateResource(e.resource, limits);
  if (Array.isArray(validated)) {
    const first = validated[0];
    return `${first?.path}: ${first?.message}`;
  }
  if (resourceKey(validated) !== e.key) return "key does not match the resource";
  return { key: e.key, ts: e.ts, origin: e.origin, resource: validated };
}

/**
 * Decodes and validates an entry from the wire: the shape, the timestamp and the resource
 * itself, size limits included (remote input is as untrusted as user input). Throws
 * {@linkcode DecodeError}.
 */
export function decodeEntry(raw: unknown): ReplicatedEntry {
  const e = validateEntry(decodeRawEntry(raw));
  if (typeof e === "string") throw new DecodeError(`Entry resource invalid: ${e}`);
  return e;
}

function entryHash(e: ReplicatedEntry): Uint8Array {
  return createHash("sha256").update(`${e.key}\0${e.ts.wall}\0${e.ts.logical}\0${e.origin}`)
    .digest();
}

/** Splits a store key into its parts. */
export function splitKey(key: string): { kind: string; namespace: string; name: string } {
  const [kind, namespace, name] = key.split("/");
  return { kind, namespace, name };
}

/** The policy store of one node. Create with {@linkcode PolicyStore.open}. */
export class PolicyStore implements ReplicatedStore {
  readonly nodeId: string;
  readonly hlc: HybridLogicalClock;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #persist: PolicyLog<RawEntry> | undefined;
  readonly #limits: ResourceLimits;
  readonly #quarantined: QuarantinedEntry[] = [];
  readonly #graceMs: number;
  readonly #compactAfter: number;
  readonly #entries = new Map<string, StoredEntry>();
  readonly #listeners = new Set<(e: ChangeEvent) => void>();
  /** XOR of the SHA-256 of every live entry: order-free and updated in O(1) per change. */
  readonly #digest = new Uint8Array(32);
  #digestHex: string | undefined;
  #version = 0;
  #liveCount = 0;
  #lastChange: { key: string; at: number; ts: HlcTimestamp } | undefined;
  /** Serialises writers: each change is decided, persisted and applied before the next. */
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  #maintenanceTimer: number | undefined;

  private constructor(
    options: PolicyStoreOptions,
    persist: PolicyLog<RawEntry> | undefined,
  ) {
    this.#limits = options.limits ?? RESOURCE_LIMITS;
    this.nodeId = options.nodeId;
    this.#clock = options.clock ?? realClock;
    this.hlc = new HybridLogicalClock(this.#clock);
    this.#log = options.log ?? silentLogger;
    this.#persist = persist;
    this.#graceMs = options.tombstoneGraceMs ?? 24 * 3600_000;
    this.#compactAfter = options.compactAfterRecords ?? 1000;
    const every = options.maintenanceIntervalMs ?? 600_000;
    if (every > 0) this.#scheduleMaintenance(every);
  }

  #scheduleMaintenance(every: number): void {
    this.#maintenanceTimer = this.#clock.setTimeout(() => {
      this.#serial(async () => {
        const removed = this.#collectTombstones();
        if (this.#persist && (removed > 0 || this.#persist.records > 0)) await this.#compactNow();
      }).catch((err) => this.#log.warn("policy store maintenance failed", { error: String(err) }))
        .finally(() => {
          if (!this.#closed) this.#scheduleMaintenance(every);
        });
    }, every);
  }

  /** Opens the store, restoring it from the data dir when one is given. */
  static async open(options: PolicyStoreOptions): Promise<PolicyStore> {
    const log = options.log ?? silentLogger;
    if (!options.dataDir) return new PolicyStore(options, undefined);
    const dir = join(options.dataDir, "policy");
    const { store: persist, recovered } = await PolicyLog.open<RawEntry>(
      dir,
      { encode: encodeEntry, decode: decodeRawEntry },
      log,
    );
    const store = new PolicyStore(options, persist);
    await store.#restoreAll(recovered.items, dir);
    // Expired tombstones are dropped only after the full replay, or an older live entry
    // replayed earlier would be resurrected.
    store.#collectTombstones();
    log.info("policy store restored", {
      entries: store.#liveCount,
      quarantined: store.#quarantined.length,
      logRecords: recovered.logRecords,
      truncatedBytes: recovered.truncatedBytes,
      digest: store.digest(),
    });
    return store;
  }

  /**
   * Restores the latest entry of each key. One whose resource no longer validates (written
   * before a limit existed, or by a version that accepted more) is quarantined: not restored
   * (an older version of it is not resurrected either), logged with its key and the reason,
   * and its content kept in `quarantine.jsonl` in the policy dir for inspection; the next
   * compaction drops it from the store's files.
   */
  async #restoreAll(items: readonly RawEntry[], dir: string): Promise<void> {
    const latest = new Map<string, RawEntry>();
    for (const e of items) {
      const current = latest.get(e.key);
      if (current && compareEntries(e, current) <= 0) continue;
      latest.set(e.key, e);
    }
    const aside: string[] = [];
    for (const raw of latest.values()) {
      this.hlc.observe(raw.ts);
      const e = validateEntry(raw, this.#limits);
      if (typeof e !== "string") {
        this.#set(e);
        continue;
      }
      this.#quarantined.push({ key: raw.key, reason: e });
      this.#log.error("policy store entry quarantined: it does not validate, so it is ignored", {
        key: raw.key,
        reason: e,
      });
      aside.push(JSON.stringify({ key: raw.key, reason: e, entry: encodeEntry(raw) }));
    }
    if (aside.length > 0) {
      const path = join(dir, "quarantine.jsonl");
      try {
        await Deno.writeTextFile(path, aside.join("\n") + "\n", { append: true });
      } catch (err) {
        this.#log.warn("could not keep quarantined entries", { path, error: errorMessage(err) });
      }
    }
  }

  /** Entries found invalid on start and not restored (see `open`). */
  quarantined(): readonly QuarantinedEntry[] {
    return this.#quarantined;
  }

  #set(e: ReplicatedEntry): StoredEntry {
    const previous = this.#entries.get(e.key);
    if (previous?.resource) {
      this.#xor(entryHash(previous));
      this.#liveCount--;
    }
    const stored: StoredEntry = {
      ...e,
      version: ++this.#version,
      acceptedAt: this.#clock.wallNow(),
    };
    this.#entries.set(e.key, stored);
    if (stored.resource) {
      this.#xor(entryHash(stored));
      this.#liveCount++;
    }
    this.#lastChange = { key: e.key, at: stored.acceptedAt, ts: e.ts };
    return stored;
  }

  #xor(h: Uint8Array): void {
    for (let i = 0; i < 32; i++) this.#digest[i] ^= h[i];
    this.#digestHex = undefined;
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(() => {
      if (this.#closed) throw new Error("policy store is closed");
      return fn();
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Persists a batch (fsync), then makes it visible and tells listeners. */
  async #commit(batch: ReplicatedEntry[], source: "local" | "remote"): Promise<StoredEntry[]> {
    if (batch.length === 0) return [];
    if (this.#persist) await this.#persist.append(batch);
    const events: ChangeEvent[] = [];
    const stored = batch.map((e) => {
      const previous = this.#entries.get(e.key);
      const entry = this.#set(e);
      events.push({ entry, previous, source });
      return entry;
    });
    for (const ev of events) {
      for (const l of this.#listeners) {
        try {
          l(ev);
        } catch (err) {
          this.#log.error("policy change listener failed", { error: String(err) });
        }
      }
    }
    if (this.#persist && this.#persist.records >= this.#compactAfter) await this.#compactNow();
    return stored;
  }

  async #compactNow(): Promise<void> {
    this.#collectTombstones();
    await this.#persist?.compact([...this.#entries.values()].map(toReplicated));
  }

  /**
   * Applies validated resources as one batch. `dryRun` only computes the outcomes. Unchanged
   * resources are not rewritten, so re-applying a file does not disturb the store digest.
   */
  apply(
    resources: readonly Resource[],
    options: { dryRun?: boolean } = {},
  ): Promise<ApplyResult[]> {
    return this.#serial(async () => {
      this.#checkApply(resources);
      const results: ApplyResult[] = [];
      const batch: ReplicatedEntry[] = [];
      for (const r of resources) {
        const key = resourceKey(r);
        const current = this.#entries.get(key);
        let result: ApplyOutcome;
        if (!current?.resource) result = "created";
        else if (canonicalJson(current.resource) === canonicalJson(r)) result = "unchanged";
        else result = "updated";
        results.push({
          kind: r.kind,
          namespace: r.metadata.namespace,
          name: r.metadata.name,
          result,
        });
        if (result !== "unchanged" && !options.dryRun) {
          batch.push({
            key,
            ts: this.hlc.now(),
            origin: this.nodeId,
            resource: structuredClone(r),
          });
        }
      }
      await this.#commit(batch, "local");
      return results;
    });
  }

  /**
   * Refuses (with a {@linkcode UserError}, HTTP 400) resources over a size limit and an apply
   * that would hold more than `storeResources` live resources. Callers validate resources
   * fully; the limits are checked here too, since they protect the node itself.
   */
  #checkApply(resources: readonly Resource[]): void {
    const issues: FieldIssue[] = [];
    let created = 0;
    resources.forEach((r, i) => {
      for (const issue of resourceLimitIssues(r, this.#limits)) {
        issues.push({ path: `[doc ${i + 1}] ${issue.path}`, message: issue.message });
      }
      if (!this.#entries.get(resourceKey(r))?.resource) created++;
    });
    const full = storeLimitIssue(this.#liveCount + created, this.#limits);
    if (full) issues.push(full);
    if (issues.length > 0) {
      const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : "";
      throw new UserError(`${issues[0].path}: ${issues[0].message}${more}`, issues);
    }
  }

  /** Deletes a resource (writes a tombstone). False when there was nothing to delete. */
  delete(kind: string, namespace: string, name: string): Promise<boolean> {
    return this.#serial(async () => {
      const key = `${kind}/${namespace}/${name}`;
      const current = this.#entries.get(key);
      if (!current?.resource) return false;
      await this.#commit(
        [{ key, ts: this.hlc.now(), origin: this.nodeId, resource: null }],
        "local",
      );
      return true;
    });
  }

  /**
   * Merges entries from another node by LWW; returns the ones that won. Entries come decoded
   * and validated (`decodeEntry`); the size limits are checked again here, and an entry over
   * one, or one that would take the store past `storeResources`, is dropped with a warning
   * (the rest of the batch is merged). Nodes refuse such entries at apply, so they arrive only
   * from an older version or from concurrent applies on two nodes.
   */
  merge(entries: readonly ReplicatedEntry[]): Promise<ReplicatedEntry[]> {
    return this.#serial(async () => {
      const winners = new Map<string, ReplicatedEntry>();
      const expiredBefore = this.#clock.wallNow() - this.#graceMs;
      let live = this.#liveCount;
      for (const e of entries) {
        const current = winners.get(e.key) ?? this.#entries.get(e.key);
        if (current && compareEntries(e, current) <= 0) continue;
        // An expired tombstone for a key we do not know would only be collected again.
        if (!current && e.resource === null && e.ts.wall < expiredBefore) continue;
        const issue = e.resource ? resourceLimitIssues(e.resource, this.#limits)[0] : undefined;
        const delta = (e.resource ? 1 : 0) - (current?.resource ? 1 : 0);
        const full = delta > 0 ? storeLimitIssue(live + delta, this.#limits) : undefined;
        if (issue || full) {
          const reason = issue ?? full!;
          this.#log.warn("replicated policy entry refused", {
            key: e.key,
            origin: e.origin,
            reason: `${reason.path}: ${reason.message}`,
          });
          continue;
        }
        live += delta;
        winners.set(e.key, e);
      }
      for (const e of winners.values()) this.hlc.observe(e.ts);
      return (await this.#commit([...winners.values()], "remote")).map(toReplicated);
    });
  }

  /** The live resource at a key, with its metadata; undefined when absent or deleted. */
  get(kind: string, namespace: string, name: string): StoredEntry | undefined {
    const e = this.#entries.get(`${kind}/${namespace}/${name}`);
    return e?.resource ? e : undefined;
  }

  /** Any entry (tombstones included) by key. */
  entry(key: string): StoredEntry | undefined {
    return this.#entries.get(key);
  }

  /** Live entries, optionally filtered, sorted by key. */
  list(filter: { kind?: string; namespace?: string } = {}): StoredEntry[] {
    const out: StoredEntry[] = [];
    for (const e of this.#entries.values()) {
      if (!e.resource) continue;
      if (filter.kind && e.resource.kind !== filter.kind) continue;
      if (filter.namespace && e.resource.metadata.namespace !== filter.namespace) continue;
      out.push(e);
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** Live resources, for the snapshot compiler. */
  resources(kind?: string): Resource[] {
    return this.list({ kind }).map((e) => e.resource!);
  }

  /** Every entry including tombstones, for sync and compaction. */
  allEntries(): StoredEntry[] {
    return [...this.#entries.values()];
  }

  summary(): SummaryItem[] {
    return [...this.#entries.values()].map((e) =>
      [e.key, e.ts.wall, e.ts.logical, e.origin, e.resource === null] as const
    );
  }

  /** Hex digest of the live content (tombstones excluded, so GC does not change it). */
  digest(): string {
    this.#digestHex ??= Array.from(this.#digest, (b) => b.toString(16).padStart(2, "0")).join("");
    return this.#digestHex;
  }

  /** Count, digest and last change, for `GET /v1/store`. */
  stats(): {
    count: number;
    tombstones: number;
    digest: string;
    version: number;
    lastChange: { key: string; at: string; ts: string } | null;
  } {
    const lc = this.#lastChange;
    return {
      count: this.#liveCount,
      tombstones: this.#entries.size - this.#liveCount,
      digest: this.digest(),
      version: this.#version,
      lastChange: lc
        ? {
          key: lc.key,
          at: new Date(lc.at).toISOString(),
          ts: `${lc.ts.wall}.${String(lc.ts.logical).padStart(4, "0")}`,
        }
        : null,
    };
  }

  /** Subscribes to changes; returns the unsubscribe function. */
  onChange(listener: (event: ChangeEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #collectTombstones(): number {
    const expiredBefore = this.#clock.wallNow() - this.#graceMs;
    let removed = 0;
    for (const [k, e] of this.#entries) {
      if (e.resource === null && e.ts.wall < expiredBefore) {
        this.#entries.delete(k);
        removed++;
      }
    }
    return removed;
  }

  /** Drops tombstones older than the grace period (in memory; on disk at compaction). */
  collectTombstones(): Promise<number> {
    return this.#serial(() => Promise.resolve(this.#collectTombstones()));
  }

  /** Writes a snapshot and empties the log now (also done every `compactAfterRecords`). */
  compact(): Promise<void> {
    return this.#serial(() => this.#compactNow());
  }

  /** Waits for pending writes, then closes the files. */
  async close(): Promise<void> {
    await this.#serial(() => Promise.resolve());
    this.#closed = true;
    if (this.#maintenanceTimer !== undefined) this.#clock.clearTimeout(this.#maintenanceTimer);
    this.#persist?.close();
  }
}

function toReplicated(e: StoredEntry): ReplicatedEntry {
  return { key: e.key, ts: e.ts, origin: e.origin, resource: e.resource };
}

/**
 * Compares a remote summary with local entries: what the remote lacks or holds older
 * (`toSend`), and which keys the remote holds newer (`toFetch`).
 */
export function diffSummary(
  local: ReplicatedStore,
  remote: readonly SummaryItem[],
): { toSend: ReplicatedEntry[]; toFetch: string[] } {
  const remoteByKey = new Map<string, SummaryItem>();
  for (const item of remote) remoteByKey.set(item[0], item);
  const toSend: ReplicatedEntry[] = [];
  const toFetch: string[] = [];
  for (const [key, wall, logical, origin] of remote) {
    const mine = local.entry(key);
    if (!mine || compareEntries({ ts: { wall, logical }, origin }, mine) > 0) toFetch.push(key);
  }
  for (const [key] of local.summary()) {
    const mine = local.entry(key)!;
    const theirs = remoteByKey.get(key);
    if (
      !theirs ||
      compareEntries(mine, { ts: { wall: theirs[1], logical: theirs[2] }, origin: theirs[3] }) > 0
    ) {
      toSend.push(mine);
    }
  }
  return { toSend, toFetch };
}

/** Validates a summary from the wire; throws {@linkcode DecodeError}. */
export function decodeSummary(raw: unknown): SummaryItem[] {
  if (!Array.isArray(raw)) throw new DecodeError("Summary is not an array");
  return raw.map((item) => {
    if (
      !Array.isArray(item) || item.length !== 5 || typeof item[0] !== "string" ||
      !Number.isSafeInteger(item[1]) || !Number.isSafeInteger(item[2]) ||
      typeof item[3] !== "string" || typeof item[4] !== "boolean"
    ) throw new DecodeError("Summary item invalid");
    return item as unknown as SummaryItem;
  });
}
