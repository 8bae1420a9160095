/**
 * @module
 * Child process for the kill -9 persistence test: applies resources one at a time to a
 * store in the given data dir and prints each name once `apply` has acknowledged it, forever,
 * until the parent kills it.
 */
import { PolicyStore } from "../../lib/store/store.ts";
import { serviceEntry } from "./store.ts";

const store = await PolicyStore.open({
  nodeId: "child",
  dataDir: Deno.args[0],
  compactAfterRecords: 7,
});
const encoder = new TextEncoder();
for (let i = 0; i < 100_000; i++) {
  await store.apply([serviceEntry(`acked-${i}`)]);
  await Deno.stdout.write(encoder.encode(`acked-${i}\n`));
}
