/**
 * @module
 * Compatibility re-exports of the old `lib/compile_routes.ts`, whose code now lives in
 * `lib/compile/routes.ts`, `lib/resources/hosts.ts`, `lib/snapshot.ts` and `lib/route_text.ts`.
 * Kept only so that branches still importing this path (cli/agent.ts and lib/admin/resources.ts
 * are being reworked concurrently) keep compiling; delete it once they import the new homes.
 */
export { canonicalHost, virtualServiceConflicts } from "./resources/hosts.ts";
export { findVirtualHost } from "./snapshot.ts";
export { describeRouteDestinations, describeRouteMatch } from "./route_text.ts";
export { DEFAULT_LOAD_BALANCER } from "./compile/destination_rules.ts";
export {
  type CompiledTraffic,
  compileTraffic,
  type TrafficCompileInput,
} from "./compile/routes.ts";
