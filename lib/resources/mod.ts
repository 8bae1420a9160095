/**
 * @module
 * Policy resources: kinds, the input parser, and compilation helpers for the snapshot.
 */
export * from "./kind.ts";
export * from "./registry.ts";
export * from "./service_entry.ts";
export * from "./virtual_service.ts";
export * from "./destination_rule.ts";
