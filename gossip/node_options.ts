/**
 * @module
 * The {@linkcode GossipNodeOptions} of an agent, from its node config: the membership timings
 * of `gossip` (gossip/config.ts), the name, and the advertised address. `--advertise-addr`
 * gives only a host; its port is the gossip flag's, and port 0 there stands for the port the
 * transport binds (GossipNode.create fills it in). The metadata starts empty: the agent
 * advertises its addresses once its listeners are bound.
 */
import type { HostPort } from "../lib/address.ts";
import type { NodeConfig } from "../lib/config.ts";
import type { Logger } from "../lib/log.ts";
import type { Registry } from "../lib/metrics.ts";
import { gossipConfigFor } from "./config.ts";
import type { Keyring } from "./keyring.ts";
import type { GossipNodeOptions } from "./mod.ts";

/** What the options take besides the config. */
export interface GossipNodeParts {
  nodeId: string;
  /** The parsed `--gossip-addr`. */
  bindAddr: HostPort;
  keyring?: Keyring;
  logger: Logger;
  metrics: Registry;
}

/** The options of the agent's {@linkcode GossipNode}. */
export function gossipNodeOptionsFor(
  c: Pick<NodeConfig, "name" | "gossip" | "advertiseAddr">,
  parts: GossipNodeParts,
): GossipNodeOptions {
  return {
    config: gossipConfigFor(c.gossip),
    name: c.name,
    nodeId: parts.nodeId,
    bindAddr: parts.bindAddr,
    advertise: c.advertiseAddr
      ? { hostname: c.advertiseAddr, port: parts.bindAddr.port }
      : undefined,
    metadata: { inboundAddr: "", adminAddr: "", services: [] },
    keyring: parts.keyring,
    logger: parts.logger,
    metrics: parts.metrics,
  };
}
