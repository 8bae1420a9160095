/**
 * @module
 * Metrics registry with Prometheus text exposition. Hot paths resolve a labelled child once
 * (`counter.with({...})`) and then only bump a number, so recording allocates nothing.
 */

type Labels = Record<string, string>;

function labelKey(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  return keys.map((k) => `${k}="${escapeLabel(labels[k])}"`).join(",");
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

/** A monotonically increasing count. */
export class CounterChild {
  value = 0;
  inc(by = 1): void {
    this.value += by;
  }
}

/** A value that goes up and down. */
export class GaugeChild {
  value = 0;
  set(v: number): void {
    this.value = v;
  }
  inc(by = 1): void {
    this.value += by;
  }
  dec(by = 1): void {
    this.value -= by;
  }
}

/** Cumulative histogram over fixed bucket bounds. */
export class HistogramChild {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }
  observe(v: number): void {
    this.sum += v;
    this.count++;
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) {
      if (v <= b[i]) {
        this.counts[i]++;
        return;
      }
    }
  }
}

abstract class Family<C> {
  readonly children = new Map<string, C>();
  constructor(readonly name: string, readonly help: string) {}
  protected abstract make(): C;
  /** The child for these labels, created on first use. Cache it on hot paths. */
  with(labels: Labels = {}): C {
    const key = labelKey(labels);
    let c = this.children.get(key);
    if (!c) {
      c = this.make();
      this.children.set(key, c);
    }
    return c;
  }
  abstract render(out: string[]): void;
}

export class Counter extends Family<CounterChild> {
  protected make(): CounterChild {
    return new CounterChild();
  }
  inc(by = 1): void {
    this.with().inc(by);
  }
  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`);
    for (const [k, c] of this.children) out.push(`${this.name}${k ? `{${k}}` : ""} ${c.value}`);
  }
}

export class Gauge extends Family<GaugeChild> {
  protected make(): GaugeChild {
    return new GaugeChild();
  }
  set(v: number): void {
    this.with().set(v);
  }
  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`);
    for (const [k, c] of this.children) out.push(`${this.name}${k ? `{${k}}` : ""} ${c.value}`);
  }
}

/** Default latency buckets in milliseconds (Envoy-like spread). */
export const latencyBucketsMs = [0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

export class Histogram extends Family<HistogramChild> {
  constructor(name: string, help: string, readonly bounds: readonly number[] = latencyBucketsMs) {
    super(name, help);
  }
  protected make(): HistogramChild {
    return new HistogramChild(this.bounds);
  }
  observe(v: number): void {
    this.with().observe(v);
  }
  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`);
    for (const [k, h] of this.children) {
      let cum = 0;
      const sep = k ? `${k},` : "";
      for (let i = 0; i < h.bounds.length; i++) {
        cum += h.counts[i];
        out.push(`${this.name}_bucket{${sep}le="${h.bounds[i]}"} ${cum}`);
      }
      out.push(`${this.name}_bucket{${sep}le="+Inf"} ${h.count}`);
      out.push(`${this.name}_sum${k ? `{${k}}` : ""} ${h.sum}`);
      out.push(`${this.name}_count${k ? `{${k}}` : ""} ${h.count}`);
    }
  }
}

/** A set of metric families; one per node. */
export class Registry {
  readonly #families = new Map<string, Family<unknown>>();

  #get<F extends Family<unknown>>(name: string, make: () => F): F {
    const existing = this.#families.get(name);
    if (existing) return existing as F;
    const f = make();
    this.#families.set(name, f);
    return f;
  }
  counter(name: string, help: string): Counter {
    return this.#get(name, () => new Counter(name, help));
  }
  gauge(name: string, help: string): Gauge {
    return this.#get(name, () => new Gauge(name, help));
  }
  histogram(name: string, help: string, bounds?: readonly number[]): Histogram {
    return this.#get(name, () => new Histogram(name, help, bounds));
  }
  readonly #collectors: (() => void)[] = [];

  /**
   * Registers a function run before each render, to copy state that is cheaper to read at
   * scrape time than to count on the hot path (e.g. per-cluster breaker counts).
   */
  addCollector(collect: () => void): void {
    this.#collectors.push(collect);
  }

  /** Prometheus text exposition format 0.0.4. */
  render(): string {
    for (const collect of this.#collectors) collect();
    const out: string[] = [];
    for (const f of this.#families.values()) f.render(out);
    return out.join("\n") + "\n";
  }
}
