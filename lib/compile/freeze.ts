/**
 * @module
 * The last step of a compile: the snapshot's maps become {@linkcode FrozenMap}s and every
 * object reachable from it is frozen, so the proxy (and anything else holding it) reads a
 * value nobody can change. Compile time is not the hot path; freezing everything is cheap
 * next to what a compile costs.
 */
import { FrozenMap } from "../frozen_map.ts";
import type { Snapshot } from "../snapshot.ts";

/**
 * Freezes `value` and everything reachable from it. Objects already frozen are taken as
 * frozen deeply (they were frozen here: values shared between clusters are visited once),
 * except {@linkcode FrozenMap}s, which are frozen at construction and whose values are still
 * visited. A plain `Map` or `Set` is refused: freezing does not stop its mutators, so a
 * snapshot field of that type would be writable.
 */
export function freezeDeep<T>(value: T): T {
  if (value instanceof FrozenMap) {
    for (const v of value.values()) freezeDeep(v);
    return value;
  }
  if (value instanceof Map || value instanceof Set) {
    throw new TypeError("A snapshot cannot hold a mutable Map or Set: use FrozenMap");
  }
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) freezeDeep(v);
  }
  return value;
}

/**
 * The read-only snapshot of a draft (a snapshot whose maps the compiler may still have been
 * filling): its maps copied into {@linkcode FrozenMap}s, so the compiler's working maps stay
 * its own, and the whole value frozen deeply.
 */
export function freezeSnapshot(draft: Snapshot): Snapshot {
  return freezeDeep({
    ...draft,
    outbound: new FrozenMap(draft.outbound),
    inbound: new FrozenMap(draft.inbound),
    clusters: new FrozenMap(draft.clusters),
  });
}
