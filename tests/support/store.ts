/**
 * @module
 * Shared fixtures for the policy store tests: resources, polling with a deadline.
 */
import type { Resource } from "../../lib/resources/mod.ts";
import type { ServiceEntrySpec } from "../../lib/resources/service_entry.ts";

/** A valid ServiceEntry with one STATIC endpoint; `port` varies the content. */
export function serviceEntry(name: string, port = 8080, namespace = "default"): Resource<
  ServiceEntrySpec
> {
  return {
    apiVersion: "networking.istio.io/v1",
    kind: "ServiceEntry",
    metadata: { name, namespace, labels: {} },
    spec: {
      hosts: [`${name}.example.com`],
      ports: [{ number: port, protocol: "HTTP", name: "http" }],
      resolution: "STATIC",
      endpoints: [{ address: "127.0.0.1" }],
    },
  };
}

/** Polls `check` until it returns true or the deadline passes (then throws `what`). */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (let i = 0; i < 100_000; i++) {
    if (await check()) return;
    if (performance.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`Gave up waiting for ${what}`);
}
