/**
 * @module
 * A node's proxy from its config: the socket backend (`proxy.network`), the access log, and
 * the outbound and inbound listeners. A listener that cannot bind is reported with its flag,
 * which the proxy does not know (it names its listeners only "outbound" and "inbound"); a proxy
 * whose listeners fail is stopped again before the error is rethrown. Imports proxy/ and lib/.
 */
import {
  errorMessage,
  formatHostPort,
  type HostPort,
  ListenError,
  type Logger,
  type NodeConfig,
  type Registry,
  type Snapshot,
  UserError,
} from "../lib/mod.ts";
import { accessLogWriter } from "../lib/access_log.ts";
import { type AccessLogEntry, Proxy, selectNetwork } from "../proxy/mod.ts";
import { addressFlag } from "./agent_flags.ts";

/** The flags that set the proxy's listeners, by the names the proxy gives them. */
const listenerFlags: Record<string, string> = {
  "outbound listener": "outbound listener, --outbound-addr",
  "inbound listener": "inbound listener, --inbound-addr",
};

/** A started proxy and the addresses its listeners bound (real ports when asked for 0). */
export interface NodeProxy {
  proxy: Proxy;
  outbound: HostPort;
  inbound: HostPort;
}

/** What the proxy is built with besides the config. */
export interface NodeProxyParts {
  snapshot: Snapshot;
  log: Logger;
  metrics: Registry;
}

/** Builds and starts the proxy the config describes. */
export async function startNodeProxy(c: NodeConfig, parts: NodeProxyParts): Promise<NodeProxy> {
  let network;
  try {
    network = selectNetwork(c.proxy.network);
  } catch (err) {
    throw new UserError(`proxy.network: ${errorMessage(err)}`);
  }
  const proxy = new Proxy({
    snapshot: parts.snapshot,
    logger: parts.log,
    metrics: parts.metrics,
    accessLog: c.accessLog
      ? accessLogWriter<AccessLogEntry>({ metrics: parts.metrics })
      : undefined,
    network,
  });
  try {
    const bound = await proxy.start({
      outbound: addressFlag(c.outboundAddr),
      inbound: addressFlag(c.inboundAddr),
    });
    return { proxy, ...bound };
  } catch (err) {
    await proxy.stop(0);
    if (err instanceof ListenError && err.what in listenerFlags) {
      throw new ListenError(listenerFlags[err.what], err.address, err.reason);
    }
    throw err;
  }
}

/** What the "node started" log line says of the proxy: its socket backend and TCP ports. */
export function proxyLogFields(proxy: Proxy): Record<string, unknown> {
  return {
    network: proxy.networkName,
    tcpUpstreams: proxy.tcpAddresses().map((a) => ({
      service: a.service,
      address: formatHostPort(a),
    })),
  };
}
