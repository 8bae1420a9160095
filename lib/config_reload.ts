/**
 * @module
 * What a reload (SIGHUP, `POST /v1/reload`) may change in a running node's config: local
 * services, proxy tuning and gossip keys (rotation). Switching gossip encryption on or off
 * and changing the proxy's socket backend need a restart, and are refused with a
 * {@linkcode UserError} saying so; everything else keeps its running value.
 */
import type { NodeConfig } from "./config.ts";
import { UserError } from "./errors.ts";

/**
 * The running config with what `next` may change live applied. `nextKeyCount` is how many
 * gossip keys `next` names; `encrypted` whether the running node encrypts gossip.
 */
export function reloadedConfig(
  running: NodeConfig,
  next: NodeConfig,
  nextKeyCount: number,
  encrypted: boolean,
): NodeConfig {
  if ((nextKeyCount > 0) !== encrypted) {
    throw new UserError(
      "gossip encryption cannot be switched on or off by a reload; restart the node",
    );
  }
  if (next.proxy.network !== running.proxy.network) {
    throw new UserError("proxy.network cannot be changed by a reload; restart the node");
  }
  return {
    ...running,
    services: next.services,
    proxy: next.proxy,
    encryptKey: next.encryptKey,
    extraEncryptKeys: next.extraEncryptKeys,
    keyringFile: next.keyringFile,
  };
}
