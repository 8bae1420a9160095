/**
 * @module
 * The public surface of `lib/`, the shared leaf that `proxy/`, `gossip/` and `main.ts` import.
 */
export * from "./address.ts";
export * from "./clock.ts";
export * from "./codec.ts";
export * from "./compile/mod.ts";
export * from "./config.ts";
export * from "./dense_set.ts";
export * from "./errors.ts";
export * from "./frozen_map.ts";
export * from "./log.ts";
export * from "./metrics.ts";
export * from "./runtime_flags.ts";
export * from "./snapshot.ts";
export * from "./version.ts";
