/**
 * @module
 * Public surface of the membership layer for `main.ts`: {@linkcode GossipNode} binds the real
 * UDP/TCP transport (or takes an injected one), runs SWIM + Lifeguard and exposes members,
 * change events and the service catalog.
 */
import { formatHostPort, type HostPort } from "../lib/address.ts";
import { type Clock, realClock } from "../lib/clock.ts";
import type { Logger } from "../lib/log.ts";
import type { Registry } from "../lib/metrics.ts";
import type { CatalogEndpoint } from "../lib/snapshot.ts";
import { catalogFromMembers } from "./catalog.ts";
import type { GossipConfig } from "./config.ts";
import { validateGossipConfig } from "./config.ts";
import type { Keyring } from "./keyring.ts";
import { type MemberEvent, Membership, type MemberView } from "./membership.ts";
import type { MemberMeta } from "./messages.ts";
import type { Transport } from "./transport.ts";
import { listenUdpTransport } from "./udp_transport.ts";

export { catalogFromMembers, type MemberJson, memberJson, servicesByName } from "./catalog.ts";
export {
  defaultLanConfig,
  defaultLocalConfig,
  defaultWanConfig,
  type GossipConfig,
  gossipConfigFor,
} from "./config.ts";
export { Keyring, parseKey } from "./keyring.ts";
export { gossipKeysOf, type KeySource, parseKeyringText, readKeyringFile } from "./keyring_file.ts";
export { advertisedMetadata, type AdvertisedMetadataInput } from "./node_metadata.ts";
export { joinSeedsWithRetry, type SeedJoin, type SeedJoinOutcome } from "./join_retry.ts";
export {
  type MemberEvent,
  type MemberEventKind,
  Membership,
  type MemberState,
  type MemberView,
} from "./membership.ts";
export type { MemberMeta, ServiceMeta } from "./messages.ts";
export { MockNetwork, MockTransport } from "./mock_transport.ts";
export type { Transport } from "./transport.ts";
export { listenUdpTransport, UdpTransport } from "./udp_transport.ts";

/**
 * Metadata fields the node fills in itself (`nodeId`, `name`, `gossipAddr`) may be omitted.
 */
export type GossipMetadataInput =
  & Omit<MemberMeta, "nodeId" | "name" | "gossipAddr">
  & Partial<Pick<MemberMeta, "nodeId" | "name" | "gossipAddr">>;

/** Options of {@linkcode GossipNode.create}. */
export interface GossipNodeOptions {
  config: GossipConfig;
  name: string;
  /** Stable id, persisted across restarts (see the module doc of membership.ts). */
  nodeId: string;
  bindAddr: HostPort;
  /**
   * Address others use to reach us; defaults to the bound address (see below for 0.0.0.0).
   * Port 0 means the bound port, so `--advertise-addr` works with `--gossip-addr HOST:0`.
   */
  advertise?: HostPort;
  metadata: GossipMetadataInput;
  keyring?: Keyring;
  /** Injected network (tests); otherwise UDP + TCP are bound on `bindAddr`. */
  transport?: Transport;
  clock?: Clock;
  logger: Logger;
  metrics: Registry;
  random?: () => number;
}

/** A member of the gossip cluster. */
export class GossipNode {
  private constructor(
    private readonly membership: Membership,
    private readonly transport: Transport,
    private readonly advertised: HostPort,
  ) {}

  /** Binds the transport and prepares the node; call {@linkcode start} then {@linkcode join}. */
  static async create(opts: GossipNodeOptions): Promise<GossipNode> {
    const bad = validateGossipConfig(opts.config);
    if (bad) throw new Error(bad);
    if (!opts.name) throw new Error("name: must not be empty");
    if (!opts.nodeId) throw new Error("nodeId: must not be empty");
    const transport = opts.transport ?? await listenUdpTransport(opts.bindAddr);
    const bound = transport.localAddr();
    const advertised = opts.advertise
      ? { hostname: opts.advertise.hostname, port: opts.advertise.port || bound.port }
      : {
        hostname: isUnspecified(bound.hostname) ? guessAdvertiseHost() : bound.hostname,
        port: bound.port,
      };
    const advertise = formatHostPort(advertised);
    try {
      const membership = new Membership({
        config: opts.config,
        name: opts.name,
        nodeId: opts.nodeId,
        advertise,
        metadata: {
          ...opts.metadata,
          nodeId: opts.nodeId,
          name: opts.name,
          gossipAddr: advertise,
        },
        transport,
        keyring: opts.keyring,
        clock: opts.clock ?? realClock,
        logger: opts.logger,
        metrics: opts.metrics,
        random: opts.random,
      });
      return new GossipNode(membership, transport, advertised);
    } catch (err) {
      await transport.close();
      throw err;
    }
  }

  start(): void {
    this.membership.start();
  }

  /** Joins through seeds; rejects with a message naming each seed when none answers. */
  join(seeds: readonly string[]): Promise<number> {
    return this.membership.join(seeds);
  }

  leave(timeoutMs: number): Promise<void> {
    return this.membership.leave(timeoutMs);
  }

  stop(): Promise<void> {
    return this.membership.stop();
  }

  members(): MemberView[] {
    return this.membership.members();
  }

  self(): MemberView {
    return this.membership.self();
  }

  onChange(cb: (e: MemberEvent) => void): () => void {
    return this.membership.onChange(cb);
  }

  /** Replaces the advertised metadata (identity fields are kept) and gossips it. */
  setMetadata(meta: GossipMetadataInput): void {
    const self = this.membership.self();
    this.membership.setMetadata({
      ...meta,
      nodeId: self.id,
      name: self.name,
      gossipAddr: self.address,
    });
  }

  /** The bound gossip address (real port when bound to port 0). */
  localAddr(): HostPort {
    return this.transport.localAddr();
  }

  /** The address advertised to other members. */
  advertiseAddr(): HostPort {
    return { ...this.advertised };
  }

  /** Service endpoints from every alive or suspect member, this node included. */
  catalog(): CatalogEndpoint[] {
    return catalogFromMembers(this.membership.members());
  }

  /** Lifeguard local health score (0 = healthy). */
  get healthScore(): number {
    return this.membership.healthScore;
  }
}

function isUnspecified(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "[::]";
}

/** First non-loopback IPv4 address; loopback when the host has none. */
function guessAdvertiseHost(): string {
  try {
    for (const i of Deno.networkInterfaces()) {
      if (i.family === "IPv4" && !i.address.startsWith("127.")) return i.address;
    }
  } catch {
    // no permission to list interfaces: fall through
  }
  return "127.0.0.1";
}
