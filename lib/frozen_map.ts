/**
 * @module
 * A `Map` that refuses changes once built, for values that are shared read-only (the proxy's
 * snapshot). Typed as `ReadonlyMap` by its users; the mutators also throw at run time, so code
 * that casts the type away cannot change a snapshot other requests are reading.
 */

/**
 * A `Map` whose `set`, `delete` and `clear` throw a `TypeError`. Reads are `Map`'s own
 * methods, not overridden, so `get` costs what it costs on a `Map` (the proxy calls it per
 * request). `Map.prototype.set.call(map, ...)` still gets through: this guards against
 * mistakes, not against deliberate circumvention.
 */
export class FrozenMap<K, V> extends Map<K, V> {
  constructor(entries: Iterable<readonly [K, V]> = []) {
    // `new Map(entries)` would call the overridden `set`; fill through Map's own instead.
    super();
    for (const [key, value] of entries) super.set(key, value);
    Object.freeze(this);
  }

  override set(key: K, _value: V): this {
    throw new TypeError(`Cannot set ${JSON.stringify(key)}: this map is read-only`);
  }

  override delete(key: K): boolean {
    throw new TypeError(`Cannot delete ${JSON.stringify(key)}: this map is read-only`);
  }

  override clear(): void {
    throw new TypeError("Cannot clear this map: it is read-only");
  }
}
