/**
 * @module
 * Policy resources: kinds, their schemas and checks, and the input parser. What they compile
 * to is `lib/compile/`.
 */
export * from "./hosts.ts";
export * from "./kind.ts";
export * from "./limits.ts";
export * from "./registry.ts";
export * from "./service_entry.ts";
export * from "./virtual_service.ts";
export * from "./destination_rule.ts";
