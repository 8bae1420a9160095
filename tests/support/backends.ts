/**
 * @module
 * The proxy's socket backends for tests that run the same scenario on each: Deno's own sockets,
 * epoll and its uring mode (null where they cannot load, so the scenario is skipped there), a
 * proxy started on one of them, and a declaration of one scenario per backend that also checks
 * the proxy left no socket open.
 */
import { Registry, silentLogger, type Snapshot } from "../../lib/mod.ts";
import { createEpollNetwork, denoNetwork, type Network, Proxy } from "../../proxy/mod.ts";
import { assert, assertEquals } from "./assert.ts";
import { settledWithin } from "./sockets.ts";

export interface SocketBackend {
  name: string;
  network: Network | null;
}

export const socketBackends: SocketBackend[] = [
  { name: "deno", network: denoNetwork },
  { name: "epoll", network: createEpollNetwork() },
  { name: "uring", network: createEpollNetwork("uring") },
];

const loopback = { hostname: "127.0.0.1", port: 0 };

/** A proxy on `network` with both listeners on ephemeral ports of `listen` (127.0.0.1). */
export async function startProxyOn(network: Network, snapshot: Snapshot, listen = loopback) {
  const proxy = new Proxy({ snapshot, logger: silentLogger, metrics: new Registry(), network });
  assertEquals(proxy.networkName, network.name);
  return { proxy, ...(await proxy.start({ outbound: listen, inbound: listen })) };
}

/**
 * Declares `fn` as a test on `backend` (skipped where it cannot load, or when `ignore`); the
 * network must settle.
 */
export function backendScenario(
  backend: SocketBackend,
  name: string,
  fn: (network: Network) => Promise<void>,
  ignore = false,
): void {
  Deno.test({
    name: `[${backend.name}] ${name}`,
    ignore: ignore || backend.network === null,
    async fn() {
      const network = backend.network!;
      await fn(network);
      assert(await settledWithin(network, 3000), "the network still has open sockets");
    },
  });
}
