/**
 * @module
 * DenseSet: membership through add and delete in any order (the last member fills a freed
 * slot), iteration over a copy while members change, and the misuse it refuses.
 */
import { DenseSet, type DenseSetMember } from "./dense_set.ts";
import { assert, assertEquals, assertThrows } from "../tests/support/assert.ts";

class Member implements DenseSetMember {
  denseIndex = -1;
  constructor(readonly name: string) {}
}

const names = (s: DenseSet<Member>) => s.values().map((m) => m.name).sort();

Deno.test("members come and go in any order and the set stays exact", () => {
  const set = new DenseSet<Member>();
  const members = ["a", "b", "c", "d", "e"].map((n) => new Member(n));
  for (const m of members) set.add(m);
  assertEquals(set.size, 5);
  // Deleting from the middle moves the last member into the freed slot.
  assert(set.delete(members[1]));
  assertEquals(members[4].denseIndex, 1);
  assert(set.delete(members[0]));
  assert(set.delete(members[4]));
  assertEquals(names(set), ["c", "d"]);
  assert(!set.has(members[0]) && set.has(members[2]) && set.has(members[3]));
  assertEquals(members[0].denseIndex, -1);
  // A deleted member can join again.
  set.add(members[0]);
  assertEquals(names(set), ["a", "c", "d"]);
});

Deno.test("a member not in the set is not deleted, and is not added twice", () => {
  const set = new DenseSet<Member>();
  const other = new DenseSet<Member>();
  const a = new Member("a"), b = new Member("b");
  set.add(a);
  other.add(b);
  // b's index (0) points at a in `set`: the check is by identity, not by index alone.
  assert(!set.delete(b));
  assert(!set.has(b));
  assertEquals(names(set), ["a"]);
  assertThrows(() => set.add(a), Error, "already a member");
  assertThrows(() => set.add(b), Error, "already a member");
});

Deno.test("values() is a copy: members deleted while iterating are all visited once", () => {
  const set = new DenseSet<Member>();
  for (let i = 0; i < 10; i++) set.add(new Member(String(i)));
  const seen: string[] = [];
  for (const m of set.values()) {
    seen.push(m.name);
    set.delete(m);
  }
  assertEquals(seen.length, 10);
  assertEquals(new Set(seen).size, 10);
  assertEquals(set.size, 0);
});

Deno.test("clear() empties the set and frees its members to join again", () => {
  const set = new DenseSet<Member>();
  const a = new Member("a");
  set.add(a);
  set.add(new Member("b"));
  set.clear();
  assertEquals(set.size, 0);
  assertEquals(a.denseIndex, -1);
  set.add(a);
  assertEquals(names(set), ["a"]);
});

Deno.test("a long run of random adds and deletes matches a Set", () => {
  const set = new DenseSet<Member>();
  const reference = new Set<Member>();
  const pool = Array.from({ length: 50 }, (_, i) => new Member(String(i)));
  let seed = 12345;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let step = 0; step < 5000; step++) {
    const m = pool[Math.floor(next() * pool.length)];
    if (reference.has(m)) {
      assert(set.delete(m));
      reference.delete(m);
    } else {
      set.add(m);
      reference.add(m);
    }
    assertEquals(set.size, reference.size);
  }
  assertEquals(names(set), [...reference].map((m) => m.name).sort());
});
