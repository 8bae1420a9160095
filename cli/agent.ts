/**
 * @module
 * The composition root of a node, and only that: builds the policy store, the proxy, policy
 * replication, the admin API and membership from the node config, connects their events
 * (membership and store changes recompile the snapshot and re-advertise), and stops them in
 * order. This is the only module that imports both `proxy/` and `gossip/`; the logic it
 * wires lives with its concern (see docs/architecture.md).
 */
import {
  createLogger,
  formatHostPort,
  type HostPort,
  listening,
  type Logger,
  type NodeConfig,
  realClock,
  Registry,
  type Snapshot,
  VERSION,
} from "../lib/mod.ts";
import { Coalescer } from "../lib/coalesce.ts";
import { reloadedConfig } from "../lib/config_reload.ts";
import { loadNodeId } from "../lib/node_id.ts";
import { NodeSnapshots } from "../lib/node_snapshot.ts";
import { stopNode } from "../lib/node_stop.ts";
import { StartedParts } from "../lib/start_rollback.ts";
import { serveNodeAdmin } from "../lib/admin/node_admin.ts";
import { PolicyStore } from "../lib/store/mod.ts";
import { gossipNodeOptionsFor } from "../gossip/node_options.ts";
import { PolicyPeers } from "../gossip/policy_peers.ts";
import { PolicyReplicator } from "../gossip/pubsub.ts";
import {
  advertisedMetadata,
  gossipKeysOf,
  GossipNode,
  joinSeedsWithRetry,
  Keyring,
  memberJson,
  type SeedJoin,
} from "../gossip/mod.ts";
import { HealthChecker, type Proxy } from "../proxy/mod.ts";
import type { ParsedArgs } from "./args.ts";
import { addressFlag, agentConfigFromArgs } from "./agent_flags.ts";
import { proxyLogFields, startNodeProxy } from "./node_proxy.ts";
import { runUntilStopSignal } from "./agent_run.ts";

/** Addresses a running agent actually bound (ports may have been 0). */
export interface BoundAddresses {
  admin: HostPort;
  outbound: HostPort;
  inbound: HostPort;
  gossip: HostPort;
}

/** A running node. */
export class Agent {
  readonly metrics = new Registry();
  readonly log: Logger;
  readonly startedAt = new Date().toISOString();
  #config: NodeConfig;
  /** Re-reads the config sources for a reload; undefined when there is nothing to re-read. */
  #reloadSource?: () => NodeConfig;
  #nodeId = "";
  #keyring?: Keyring;
  #store!: PolicyStore;
  #proxy!: Proxy;
  #replicator?: PolicyReplicator;
  #admin?: Deno.HttpServer;
  #gossip?: GossipNode;
  #health?: HealthChecker;
  #seedJoin?: SeedJoin;
  #bound?: BoundAddresses;
  #stopped?: Promise<void>;
  #snapshots = new NodeSnapshots({
    config: () => this.#config,
    catalog: () => this.#gossip?.catalog() ?? [],
    resources: (kind) => this.#store?.resources(kind) ?? [],
  });
  #refresh = new Coalescer(realClock, 20, () => this.refresh());
  #advertise = new Coalescer(realClock, 50, () => this.#setMetadata());

  constructor(config: NodeConfig, reloadSource?: () => NodeConfig) {
    this.#config = config;
    this.#reloadSource = reloadSource;
    this.log = createLogger("weft", config.logLevel);
  }

  /** Starts every part; on failure stops what started, in reverse order, and rethrows. */
  async start(): Promise<BoundAddresses> {
    const c = this.#config;
    // Keys first: a bad one is the user's to fix, and must not leave a data directory behind.
    const keys = gossipKeysOf(c);
    this.#keyring = keys.length > 0 ? await Keyring.create(keys) : undefined;
    this.#nodeId = await loadNodeId(c.dataDir);
    const started = new StartedParts(this.log);
    try {
      this.#store = await PolicyStore.open({
        nodeId: this.#nodeId,
        dataDir: c.dataDir,
        log: this.log.child("store"),
      });
      started.add(() => this.#store.close());
      const { proxy, ...listeners } = await startNodeProxy(c, {
        snapshot: this.#snapshots.next(),
        log: this.log.child("proxy"),
        metrics: this.metrics,
      });
      this.#proxy = proxy;
      started.add(() => proxy.stop(0));
      this.#replicator = await listening(
        "policy replication, --p2p-addr",
        c.p2pAddr,
        () =>
          PolicyReplicator.start({
            store: this.#store,
            listenAddr: c.p2pAddr,
            keyFile: `${c.dataDir}/p2p.key`,
            log: this.log.child("pubsub"),
            metrics: this.metrics,
          }),
      );
      started.add(() => this.#replicator?.stop());
      const admin = await listening(
        "admin API, --admin-addr",
        c.adminAddr,
        () => this.#startAdmin(addressFlag(c.adminAddr)),
      );
      started.add(() => this.#admin?.shutdown());
      const gossip = await listening(
        "gossip, --gossip-addr",
        c.gossipAddr,
        () =>
          GossipNode.create(gossipNodeOptionsFor(c, {
            nodeId: this.#nodeId,
            bindAddr: addressFlag(c.gossipAddr),
            keyring: this.#keyring,
            logger: this.log.child("gossip"),
            metrics: this.metrics,
          })),
      );
      this.#gossip = gossip;
      started.add(() => gossip.stop());
      this.#bound = { admin, ...listeners, gossip: gossip.localAddr() };
      this.#setMetadata();
      const policyPeers = new PolicyPeers(this.#replicator, this.#nodeId, this.log);
      gossip.onChange((ev) => {
        this.#refresh.schedule();
        policyPeers.memberChanged(ev);
      });
      this.#store.onChange(() => this.#localStateChanged());
      gossip.start();
      // After the proxy and gossip: a verdict change re-advertises and recompiles at once.
      this.#health = new HealthChecker(c.services, {
        metrics: this.metrics,
        logger: this.log.child("health"),
        onChange: (service, healthy) => {
          this.#snapshots.noteHealth(service, healthy);
          this.#localStateChanged();
        },
      });
      started.add(() => this.#health?.stop());
    } catch (err) {
      await started.stopAll();
      throw err;
    }
    this.log.info("node started", {
      name: c.name,
      id: this.#nodeId,
      admin: formatHostPort(this.#bound.admin),
      outbound: formatHostPort(this.#bound.outbound),
      inbound: formatHostPort(this.#bound.inbound),
      gossip: formatHostPort(this.#gossip.advertiseAddr()),
      services: c.services.map((s) => s.name),
      ...proxyLogFields(this.#proxy),
    });
    if (c.join.length > 0) {
      const gossip = this.#gossip;
      this.#seedJoin = joinSeedsWithRetry({
        seeds: c.join,
        join: (seeds) => gossip.join(seeds),
        clock: realClock,
        log: this.log,
      });
    }
    return this.#bound;
  }

  /** The store or a local health verdict changed: recompile, and re-advertise the digest. */
  #localStateChanged(): void {
    this.#refresh.schedule();
    this.#advertise.schedule();
  }

  /** Advertises this node's addresses, store digest and services to the cluster. */
  #setMetadata(): void {
    if (!this.#gossip || !this.#bound) return;
    const advertiseHost = this.#gossip.advertiseAddr().hostname;
    this.#gossip.setMetadata(advertisedMetadata({
      advertiseHost,
      inbound: this.#bound.inbound,
      admin: this.#bound.admin,
      p2pAddr: this.#replicator?.advertisedAddr(advertiseHost),
      storeDigest: this.#store.digest(),
      services: this.#config.services,
      unhealthy: this.#snapshots.unhealthyLocalServices,
    }));
  }

  /** Recompiles the snapshot from current inputs and swaps it into the proxy. */
  refresh(): Snapshot {
    const snap = this.#snapshots.next();
    this.#proxy.update(snap);
    return snap;
  }

  /**
   * Re-reads the config (file and flags) and applies what can change live (lib/config_reload.ts).
   * An invalid config is rejected and the running one stays.
   */
  async reload(): Promise<{ snapshotVersion: number }> {
    if (this.#reloadSource) {
      const next = this.#reloadSource(); // throws UserError: nothing changes
      const keys = gossipKeysOf(next);
      const config = reloadedConfig(this.#config, next, keys.length, this.#keyring !== undefined);
      if (this.#keyring) await this.#keyring.replaceAll(keys);
      this.#config = config;
      this.#health?.update(config.services);
      this.#setMetadata();
    }
    const snap = this.refresh();
    this.log.info("reloaded", { snapshotVersion: snap.version });
    return { snapshotVersion: snap.version };
  }

  async #startAdmin(at: HostPort): Promise<HostPort> {
    const { server, addr } = await serveNodeAdmin({
      identity: () => ({ name: this.#config.name, id: this.#nodeId }),
      version: VERSION,
      startedAt: this.startedAt,
      members: () => this.#gossip?.members() ?? [],
      memberInfo: memberJson,
      snapshot: () => this.#proxy.current(),
      proxyNetwork: () => this.#proxy.networkName,
      store: this.#store,
      reload: () => this.reload(),
      metrics: () => this.metrics.render(),
    }, at);
    this.#admin = server;
    return addr;
  }

  /**
   * Stops the node: announces `left` to the cluster (so peers stop routing here at once
   * instead of waiting for failure detection), drains the proxy, closes the admin API.
   * Idempotent: a second call waits for the same drain instead of starting another.
   */
  stop(): Promise<void> {
    return this.#stopped ??= this.#stop();
  }

  async #stop(): Promise<void> {
    await stopNode({
      background: [
        () => this.#seedJoin?.cancel(),
        () => this.#health?.stop(),
        () => this.#refresh.cancel(),
        () => this.#advertise.cancel(),
      ],
      membership: this.#gossip,
      replication: this.#replicator,
      proxy: this.#proxy,
      store: this.#store,
      admin: this.#admin,
    }, { drainTimeoutMs: this.#config.proxy.drainTimeoutMs, log: this.log });
    this.log.info("node stopped", { name: this.#config.name });
  }
}

/** Runs a node until SIGINT/SIGTERM (SIGHUP reloads from the same flags); the exit code. */
export function runAgentUntilSignal(config: NodeConfig, args: ParsedArgs): Promise<number> {
  return runUntilStopSignal(new Agent(config, () => agentConfigFromArgs(args)));
}
