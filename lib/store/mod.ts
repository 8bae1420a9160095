/**
 * @module
 * The replicated policy store: HLC timestamps, the LWW map with tombstones, persistence.
 */
export * from "./hlc.ts";
export * from "./persist.ts";
export * from "./store.ts";
