/**
 * @module
 * The Prometheus text exposition (format 0.0.4) that scrapers parse: histogram buckets are
 * cumulative (each `le` bucket counts every observation at or below its bound, and `+Inf`
 * equals `_count`), and label values escape backslash, double quote and newline, so a value
 * taken from a request (a path, a header) cannot end the label or the line early.
 */
import { assertEquals } from "../tests/support/assert.ts";
import { Registry } from "./metrics.ts";

/** The sample lines of `text` whose metric name (before any `{`) is `name`. */
function samples(text: string, name: string): string[] {
  return text.split("\n").filter((line) =>
    !line.startsWith("#") && (line.startsWith(`${name}{`) || line.startsWith(`${name} `))
  );
}

/** `le` bound and value of each `_bucket` sample, in exposition order. */
function buckets(text: string, name: string): [string, number][] {
  return samples(text, `${name}_bucket`).map((line) => {
    const le = /le="([^"]*)"/.exec(line)![1];
    return [le, Number(line.slice(line.lastIndexOf(" ") + 1))];
  });
}

Deno.test("histogram buckets are cumulative and +Inf equals _count", () => {
  const registry = new Registry();
  const h = registry.histogram("weft_test_latency_ms", "test latency", [1, 5, 10]);
  // Two at or below 1, one in (1, 5], none in (5, 10], two above every bound. A value equal
  // to a bound belongs to that bound's bucket (`le` is "less than or equal").
  for (const v of [0.5, 1, 3, 50, 70]) h.observe(v);
  const text = registry.render();
  assertEquals(buckets(text, "weft_test_latency_ms"), [
    ["1", 2],
    ["5", 3],
    ["10", 3],
    ["+Inf", 5],
  ]);
  assertEquals(samples(text, "weft_test_latency_ms_count"), ["weft_test_latency_ms_count 5"]);
  assertEquals(samples(text, "weft_test_latency_ms_sum"), ["weft_test_latency_ms_sum 124.5"]);
});

Deno.test("labelled histogram children keep their labels before le, each cumulative", () => {
  const registry = new Registry();
  const h = registry.histogram("weft_test_size", "test sizes", [10, 100]);
  h.with({ cluster: "a" }).observe(5);
  h.with({ cluster: "a" }).observe(50);
  h.with({ cluster: "b" }).observe(500);
  assertEquals(samples(registry.render(), "weft_test_size_bucket"), [
    'weft_test_size_bucket{cluster="a",le="10"} 1',
    'weft_test_size_bucket{cluster="a",le="100"} 2',
    'weft_test_size_bucket{cluster="a",le="+Inf"} 2',
    'weft_test_size_bucket{cluster="b",le="10"} 0',
    'weft_test_size_bucket{cluster="b",le="100"} 0',
    'weft_test_size_bucket{cluster="b",le="+Inf"} 1',
  ]);
});

Deno.test("label values escape backslash, double quote and newline", () => {
  const registry = new Registry();
  const requests = registry.counter("weft_test_requests_total", "test requests");
  requests.with({ path: 'C:\\dir "quoted"\nnext' }).inc(3);
  const text = registry.render();
  // The escaped value as the format spells it: \\ for \, \" for ", \n for a newline.
  assertEquals(samples(text, "weft_test_requests_total"), [
    'weft_test_requests_total{path="C:\\\\dir \\"quoted\\"\\nnext"} 3',
  ]);
  // Nothing of the value spills onto a line of its own.
  assertEquals(text.split("\n").filter((line) => line.startsWith("next")), []);
});

Deno.test("escaped label values name distinct children and sort by label name", () => {
  const registry = new Registry();
  const g = registry.gauge("weft_test_open", "test gauge");
  // Without escaping, these two label sets would render as the same text.
  g.with({ a: 'x",b="y' }).set(1);
  g.with({ b: "y", a: "x" }).set(2);
  assertEquals(samples(registry.render(), "weft_test_open"), [
    'weft_test_open{a="x\\",b=\\"y"} 1',
    'weft_test_open{a="x",b="y"} 2',
  ]);
});
