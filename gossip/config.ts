/**
 * @module
 * Membership timing profiles in the spirit of HashiCorp memberlist: every default carries the
 * reason it has that value, so operators can reason about detection time versus false alarms.
 */

import type { GossipSettings } from "../lib/config.ts";

/** Tunables of the SWIM/Lifeguard membership protocol. All durations in milliseconds. */
export interface GossipConfig {
  /** Time between failure-detection probes of one member. */
  probeIntervalMs: number;
  /** How long to wait for a direct ack before asking others to probe indirectly. */
  probeTimeoutMs: number;
  /** Number of members asked to probe indirectly (ping-req fan-out, SWIM's k). */
  indirectChecks: number;
  /** Suspicion timeout multiplier: min timeout = mult * log10(max(1, n)) * probeInterval. */
  suspicionMult: number;
  /** Lifeguard: the max suspicion timeout is this multiple of the min timeout. */
  suspicionMaxTimeoutMult: number;
  /** Broadcast retransmits = mult * ceil(log10(n + 1)). */
  retransmitMult: number;
  /** Time between piggy-back gossip rounds. */
  gossipIntervalMs: number;
  /** Members gossiped to each round. */
  gossipNodes: number;
  /** Dead members still receive gossip for this long (helps a falsely-dead node refute). */
  gossipToTheDeadMs: number;
  /** Dead and left members are forgotten after this long; a new node may then reuse the name. */
  deadReclaimMs: number;
  /** Full-state TCP anti-entropy period; scaled up above 32 members (memberlist's pushPullScale). */
  pushPullIntervalMs: number;
  /** Lifeguard awareness ceiling: probe timeouts stretch by up to this factor on a sick node. */
  awarenessMaxMultiplier: number;
  /** Period of the background re-join of seeds that are not alive in our view (heals splits). */
  rejoinIntervalMs: number;
  /** Deadline of one TCP push-pull exchange. */
  tcpTimeoutMs: number;
  /** Largest UDP payload we build (stays under a 1500-byte Ethernet MTU with headers). */
  packetSize: number;
}

/**
 * LAN profile, memberlist's DefaultLANConfig. A dead node is detected after the probe that
 * misses it (<= n probe periods, ~1 s each round robin) plus the suspicion timeout
 * (4 * log10(n) s, at least 1 probe period, up to 6x that without confirmations).
 */
export function defaultLanConfig(): GossipConfig {
  return {
    // memberlist: 1 s. One probe per second keeps per-node load constant as the cluster grows.
    probeIntervalMs: 1000,
    // memberlist: 500 ms. Well above LAN RTT (~ms) so a slow GC pause does not look like death.
    probeTimeoutMs: 500,
    // SWIM/memberlist k = 3: three independent paths defeat a single lossy link.
    indirectChecks: 3,
    // memberlist: 4. Balances detection time against false positives under loss.
    suspicionMult: 4,
    // memberlist: 6. Lifeguard lets an unconfirmed suspicion wait up to 6x the minimum.
    suspicionMaxTimeoutMult: 6,
    // memberlist: 4. With ceil(log10(n+1)) this reaches every node with high probability.
    retransmitMult: 4,
    // memberlist: 200 ms to 3 nodes. Fast dissemination at a few small packets per second.
    gossipIntervalMs: 200,
    gossipNodes: 3,
    // memberlist: 30 s. Gives a wrongly-declared node a window to hear it and refute.
    gossipToTheDeadMs: 30_000,
    // Twice the gossip-to-the-dead window, so no stale broadcast can resurrect a reaped node.
    deadReclaimMs: 60_000,
    // memberlist: 30 s. Anti-entropy repairs anything gossip lost; cheap at this rate.
    pushPullIntervalMs: 30_000,
    // memberlist: 8. An overloaded node stretches its timeouts up to 8x before accusing others.
    awarenessMaxMultiplier: 8,
    // Same as push-pull: a split cluster heals within one period once the network is back.
    rejoinIntervalMs: 30_000,
    // memberlist TCPTimeout: 10 s on LAN.
    tcpTimeoutMs: 10_000,
    // memberlist UDPBufferSize: 1400.
    packetSize: 1400,
  };
}

/**
 * Loopback profile, memberlist's DefaultLocalConfig: everything on one host answers in
 * microseconds, so timeouts shrink and detection is ~5x faster than LAN.
 */
export function defaultLocalConfig(): GossipConfig {
  return {
    ...defaultLanConfig(),
    // memberlist local: 1 s probe interval, 200 ms probe timeout, 1 indirect check, suspicion mult 3,
    // retransmit mult 2, gossip 100 ms, push-pull 15 s, TCP timeout 1 s, gossip-to-dead 15 s.
    probeIntervalMs: 1000,
    probeTimeoutMs: 200,
    // memberlist local: 1 relay is enough where the only failure is the process itself.
    indirectChecks: 1,
    suspicionMult: 3,
    retransmitMult: 2,
    gossipIntervalMs: 100,
    gossipToTheDeadMs: 15_000,
    deadReclaimMs: 30_000,
    pushPullIntervalMs: 15_000,
    rejoinIntervalMs: 15_000,
    tcpTimeoutMs: 1_000,
  };
}

/**
 * WAN profile, memberlist's DefaultWANConfig: longer timeouts for cross-datacenter RTTs and
 * loss, at the cost of slower detection.
 */
export function defaultWanConfig(): GossipConfig {
  return {
    ...defaultLanConfig(),
    // memberlist WAN: probe 5 s / timeout 3 s, suspicion mult 6, gossip 500 ms to 4 nodes,
    // push-pull 60 s, gossip-to-the-dead 60 s, TCP timeout 30 s.
    probeIntervalMs: 5000,
    probeTimeoutMs: 3000,
    suspicionMult: 6,
    gossipIntervalMs: 500,
    gossipNodes: 4,
    gossipToTheDeadMs: 60_000,
    deadReclaimMs: 120_000,
    pushPullIntervalMs: 60_000,
    rejoinIntervalMs: 60_000,
    tcpTimeoutMs: 30_000,
  };
}

/** Checks a config; returns a one-line reason naming the field, or undefined when valid. */
export function validateGossipConfig(c: GossipConfig): string | undefined {
  const positive: (keyof GossipConfig)[] = [
    "probeIntervalMs",
    "probeTimeoutMs",
    "gossipIntervalMs",
    "pushPullIntervalMs",
    "rejoinIntervalMs",
    "tcpTimeoutMs",
    "suspicionMult",
    "retransmitMult",
    "awarenessMaxMultiplier",
  ];
  for (const k of positive) {
    if (!(Number.isFinite(c[k]) && c[k] > 0)) return `gossip.${k}: must be a positive number`;
  }
  if (c.probeTimeoutMs > c.probeIntervalMs) {
    return "gossip.probeTimeoutMs: must not exceed probeIntervalMs";
  }
  if (c.packetSize < 512 || c.packetSize > 65000) {
    return "gossip.packetSize: must be between 512 and 65000";
  }
  return undefined;
}

/**
 * The membership timings of a node config's `gossip` section: its profile's defaults with
 * the values the config sets on top.
 */
export function gossipConfigFor(settings: GossipSettings): GossipConfig {
  const base = { lan: defaultLanConfig, wan: defaultWanConfig, local: defaultLocalConfig }[
    settings.profile
  ]();
  const { profile: _profile, ...overrides } = settings;
  return {
    ...base,
    ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)),
  };
}
