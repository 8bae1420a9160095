/**
 * @module
 * Test and benchmark helpers for balancers: endpoint fixtures and a chi-square statistic.
 * Not used by the proxy at run time.
 */
import type { EndpointConfig } from "../../lib/mod.ts";

/** An endpoint `10.0.0.<i>:8080`-like fixture with the given weight and health. */
export function endpoint(
  i: number,
  options: { weight?: number; healthy?: boolean; labels?: Record<string, string> } = {},
): EndpointConfig {
  const hostname = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  return {
    key: `${hostname}:8080`,
    hostname,
    port: 8080,
    node: `node-${i}`,
    labels: options.labels ?? {},
    weight: options.weight ?? 1,
    healthy: options.healthy ?? true,
    viaInbound: true,
  };
}

/** `count` healthy endpoints with weight 1, numbered from `first`. */
export function endpoints(count: number, first = 0): EndpointConfig[] {
  return Array.from({ length: count }, (_, i) => endpoint(first + i));
}

/** Pearson's chi-square statistic of observed counts against expected proportions. */
export function chiSquare(observed: readonly number[], expectedShare: readonly number[]): number {
  const total = observed.reduce((s, x) => s + x, 0);
  const shareSum = expectedShare.reduce((s, x) => s + x, 0);
  let statistic = 0;
  for (let i = 0; i < observed.length; i++) {
    const expected = (total * expectedShare[i]) / shareSum;
    statistic += (observed[i] - expected) ** 2 / expected;
  }
  return statistic;
}

/**
 * Upper critical values of the chi-square distribution at p = 0.001 by degrees of freedom
 * (1..10): a correct balancer exceeds them one time in a thousand (and tests use fixed seeds).
 */
/**
 * Critical values at p = 0.00001 (degrees of freedom 1..5), for tests that sample with
 * `Math.random` (a real proxy): a correct split fails one run in 100,000, while a wrong one
 * (e.g. 50/50 instead of 90/10 over a few hundred requests) still lands far above them.
 */
export const CHI_SQUARE_P00001 = [NaN, 19.51, 23.03, 25.9, 28.47, 30.86];

export const CHI_SQUARE_P001 = [
  NaN,
  10.83,
  13.82,
  16.27,
  18.47,
  20.52,
  22.46,
  24.32,
  26.12,
  27.88,
  29.59,
];
