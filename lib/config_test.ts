/**
 * @module
 * Node config parsing: defaults, flags over file, `--service` specs, and errors naming the field.
 */
import { assertEquals, assertThrows } from "../tests/support/assert.ts";
import { parseNodeConfig, parseServiceSpec } from "./config.ts";
import { UserError } from "./errors.ts";

Deno.test("config defaults follow the CLI contract", () => {
  const c = parseNodeConfig({});
  assertEquals(c.adminAddr, "127.0.0.1:15000");
  assertEquals(c.outboundAddr, "127.0.0.1:15001");
  assertEquals(c.inboundAddr, "0.0.0.0:15006");
  assertEquals(c.gossipAddr, "0.0.0.0:7946");
  assertEquals(c.p2pAddr, "0.0.0.0:7947");
  assertEquals(c.dataDir, "./weft-data");
  assertEquals(c.name, Deno.hostname());
  assertEquals(c.proxy.routeTimeoutMs, 15000);
});

Deno.test("config errors name the field and the reason", () => {
  const err = assertThrows(() => parseNodeConfig({ adminAddr: "nonsense" }), UserError);
  assertEquals(err.message, 'config: adminAddr: expected HOST:PORT, got "nonsense"');
  const err2 = assertThrows(
    () => parseNodeConfig({ services: [{ name: "x", port: 0 }] }),
    UserError,
  );
  assertEquals(err2.details[0].path, "services[0].port");
  const err3 = assertThrows(() => parseNodeConfig({ colour: "blue" }), UserError);
  assertEquals(err3.details[0].path, "(root)");
  assertEquals(err3.message.includes("colour"), true);
});

Deno.test("duplicate local service names are rejected", () => {
  const err = assertThrows(
    () => parseNodeConfig({ services: [{ name: "a", port: 1 }, { name: "a", port: 2 }] }),
    UserError,
  );
  assertEquals(err.details[0].path, "services[1].name");
});

Deno.test("service specs parse name, port, protocol and labels", () => {
  assertEquals(parseServiceSpec("reviews=9080,version=v2"), {
    name: "reviews",
    port: 9080,
    host: "127.0.0.1",
    protocol: "http",
    labels: { version: "v2" },
  });
  assertEquals(typeof parseServiceSpec("reviews"), "string");
  assertEquals(typeof parseServiceSpec("reviews=99999"), "string");
  assertEquals(typeof parseServiceSpec("reviews=80,protocol=smtp"), "string");
  assertEquals(typeof parseServiceSpec("Bad_Name=80"), "string");
});

Deno.test("downstream timeouts and the connection limit have defaults and name a bad value", () => {
  const p = parseNodeConfig({}).proxy;
  assertEquals(
    [
      p.requestHeadersTimeoutMs,
      p.downstreamIdleTimeoutMs,
      p.requestBodyTimeoutMs,
      p.maxDownstreamConnections,
    ],
    [10_000, 60_000, 30_000, 10_000],
  );
  const err = assertThrows(
    () => parseNodeConfig({ proxy: { requestBodyTimeoutMs: -1 } }),
    UserError,
  );
  assertEquals(err.message.startsWith("config: proxy.requestBodyTimeoutMs: "), true, err.message);
  assertEquals(/>=\s*0/.test(err.message), true, err.message);
});
