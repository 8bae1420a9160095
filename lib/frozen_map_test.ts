/**
 * @module
 * FrozenMap reads like a Map and refuses every change, leaving its entries as they were.
 */
import { assert, assertEquals, assertThrows } from "../tests/support/assert.ts";
import { FrozenMap } from "./frozen_map.ts";

Deno.test("a FrozenMap reads like the Map it was built from", () => {
  const map = new FrozenMap([["a", 1], ["b", 2]]);
  assert(map instanceof Map, "a Map, so Map-typed code accepts it");
  assertEquals(map.get("a"), 1);
  assertEquals(map.has("b"), true);
  assertEquals(map.size, 2);
  assertEquals([...map], [["a", 1], ["b", 2]]);
  const seen: string[] = [];
  map.forEach((v, k) => seen.push(`${k}=${v}`));
  assertEquals(seen, ["a=1", "b=2"]);
  assertEquals(new FrozenMap().size, 0);
});

Deno.test("a FrozenMap refuses set, delete and clear and keeps its entries", () => {
  const map = new FrozenMap([["a", 1]]);
  assertThrows(() => map.set("b", 2), TypeError, 'Cannot set "b": this map is read-only');
  assertThrows(() => map.set("a", 9), TypeError, "read-only");
  assertThrows(() => map.delete("a"), TypeError, 'Cannot delete "a"');
  assertThrows(() => map.clear(), TypeError, "read-only");
  assertEquals([...map], [["a", 1]]);
  assert(Object.isFrozen(map), "no own properties can be added either");
});
