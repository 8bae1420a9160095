/**
 * @module
 * The table form of the operating commands (`weft members`, `services`, `status`, ...).
 */
import { formatOps } from "./ops.ts";
import { assert, assertEquals } from "../tests/support/assert.ts";

const status = (lastChange: unknown) => ({
  node: { name: "node-1", id: "abc", version: "0.1.0" },
  snapshotVersion: 3,
  proxyNetwork: "uring",
  members: { total: 2, alive: 2, suspect: 0, dead: 0, left: 0 },
  store: {
    count: 1,
    digest: "2e1af3fdda342aec0123",
    lastChange,
    converged: ["node-1", "node-2"],
    lagging: [],
  },
});

Deno.test("weft status names the store's last change (key and time), or says never", () => {
  const text = formatOps(
    "status",
    status({
      key: "VirtualService/default/web-routes",
      at: "2026-11-26T19:00:00.000Z",
      ts: "1764183600000.0000",
    }),
  );
  const store = text.split("\n").find((l) => l.startsWith("store"))!;
  assertEquals(
    store,
    "store      1 resources, digest 2e1af3fdda342aec, last change " +
      "VirtualService/default/web-routes at 2026-11-26T19:00:00.000Z",
  );
  assert(!text.includes("[object Object]"), text);
  assert(formatOps("status", status(null)).includes("last change never"));
  assert(text.includes("converged  node-1, node-2") && text.includes("lagging    -"), text);
});
