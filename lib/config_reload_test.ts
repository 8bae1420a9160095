/**
 * @module
 * Which config changes a reload applies, and which it refuses until a restart.
 */
import { assertEquals, assertThrows } from "../tests/support/assert.ts";
import { parseNodeConfig } from "./config.ts";
import { UserError } from "./errors.ts";
import { reloadedConfig } from "./config_reload.ts";

const running = parseNodeConfig({ name: "a", services: [{ name: "one", port: 9001 }] });

Deno.test("a reload takes services and proxy tuning and keeps the rest", () => {
  const next = parseNodeConfig({
    name: "renamed",
    adminAddr: "127.0.0.1:9999",
    services: [{ name: "two", port: 9002 }],
    proxy: { drainTimeoutMs: 1 },
  });
  const c = reloadedConfig(running, next, 0, false);
  assertEquals(c.services.map((s) => s.name), ["two"]);
  assertEquals(c.proxy.drainTimeoutMs, 1);
  assertEquals(c.name, "a");
  assertEquals(c.adminAddr, running.adminAddr);
});

Deno.test("a reload cannot switch gossip encryption on or off", () => {
  assertThrows(() => reloadedConfig(running, running, 1, false), UserError, "restart the node");
  assertThrows(() => reloadedConfig(running, running, 0, true), UserError, "switched on or off");
});

Deno.test("a reload cannot change the proxy's socket backend", () => {
  const network = running.proxy.network === "deno" ? "auto" : "deno";
  const next = { ...running, proxy: { ...running.proxy, network } } as typeof running;
  assertThrows(() => reloadedConfig(running, next, 0, false), UserError, "proxy.network");
});
