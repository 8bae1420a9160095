/**
 * @module
 * The last step of a compile: every object reachable from the snapshot is frozen, so the
 * proxy (and anything else holding it) reads a value nobody changes.
 */
import type { Snapshot } from "../snapshot.ts";

/** Freezes `value` and everything reachable from it (map values included). */
export function freezeDeep<T>(v: T): T {
  if (v && typeof v === "object" && !Object.isFrozen(v)) {
    Object.freeze(v);
    if (v instanceof Map) { for (const x of v.values()) freezeDeep(x); }
    else for (const x of Object.values(v)) freezeDeep(x);
  }
  return v;
}

/** The snapshot of a draft, frozen deeply. */
export function freezeSnapshot(draft: Snapshot): Snapshot {
  return freezeDeep(draft);
}
