/**
 * @module
 * A node's proxy from its config: it binds the configured listeners (port 0 gives the real
 * port back), and a listener that cannot bind is reported with its flag.
 */
import { assert, assertEquals, assertRejects } from "../tests/support/assert.ts";
import {
  compileSnapshot,
  ListenError,
  parseNodeConfig,
  Registry,
  silentLogger,
} from "../lib/mod.ts";
import { startNodeProxy } from "./node_proxy.ts";

function config(outboundAddr: string) {
  return parseNodeConfig({
    outboundAddr,
    inboundAddr: "127.0.0.1:0",
    proxy: { network: "deno" },
  });
}

function parts(c: ReturnType<typeof config>) {
  const snapshot = compileSnapshot({
    nodeName: "a",
    localServices: [],
    catalog: [],
    tuning: c.proxy,
  }, 1);
  return { snapshot, log: silentLogger, metrics: new Registry() };
}

Deno.test("the proxy binds the configured listeners and reports their ports", async () => {
  const c = config("127.0.0.1:0");
  const { proxy, outbound, inbound } = await startNodeProxy(c, parts(c));
  try {
    assertEquals(outbound.hostname, "127.0.0.1");
    assert(outbound.port > 0 && inbound.port > 0 && outbound.port !== inbound.port);
  } finally {
    await proxy.stop(0);
  }
});

Deno.test("an outbound address in use is reported with its flag", async () => {
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const c = config(`127.0.0.1:${busy.addr.port}`);
    const err = await assertRejects(() => startNodeProxy(c, parts(c)), ListenError);
    assertEquals(err.what, "outbound listener, --outbound-addr");
    assertEquals(err.reason, "address already in use");
  } finally {
    busy.close();
  }
});
