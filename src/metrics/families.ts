/**
 * Metric families whose samples are plain numbers, exported through a prom-client Registry.
 *
 * Why not prom-client's own Counter and Histogram on the hot paths: their label children build a
 * label-hash string and a labels object on every inc()/observe(). Here a series is created once per
 * label combination (callers keep it), and counting is `series.value++` or `series.observe(x)`: no
 * allocation, no hashing. prom-client still owns the registry, the text exposition and the default
 * process metrics; these families plug into it as metrics of their own (Registry.registerMetric calls
 * only `name` and `get()`).
 *
 * Invariants:
 *  - Label values come from bounded sets fixed by the code (an op, an errno name, a source name from
 *    the config, a tier): never a path or an asset id.
 *  - A family's `collect` runs at scrape time only; it may set series from counters kept elsewhere.
 */
import type { Metric, Registry } from 'prom-client';

type Labels = Readonly<Record<string, string>>;

/** One counter or gauge series. */
export interface Series {
  readonly labels: Labels;
  value: number;
}

interface Sample {
  metricName?: string;
  labels: Labels;
  value: number;
}

export abstract class Family<S> {
  private readonly series = new Map<string, S>();

  constructor(
    registry: Registry,
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
    private readonly labelNames: readonly string[],
    /** Runs before each scrape: may set series from counters kept elsewhere. */
    private readonly collect?: (family: Family<S>) => void,
  ) {
    registry.registerMetric(this as unknown as Metric);
  }

  /** The series of these label values (in labelNames' order), created on first use: keep it. */
  with(...values: string[]): S {
    const key = values.join('\0');
    let s = this.series.get(key);
    if (!s) {
      if (values.length !== this.labelNames.length) throw new Error(`${this.name}: expected labels ${this.labelNames.join(', ')}`);
      const labels = Object.freeze(Object.fromEntries(this.labelNames.map((n, i) => [n, values[i]!])));
      this.series.set(key, (s = this.create(labels)));
    }
    return s;
  }

  all(): IterableIterator<S> {
    return this.series.values();
  }

  protected abstract create(labels: Labels): S;
  protected abstract samples(s: S): Sample[];

  /** What prom-client's Registry asks of a metric. */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: 'sum'; values: Sample[] }> {
    this.collect?.(this);
    return { name: this.name, help: this.help, type: this.type, aggregator: 'sum', values: [...this.series.values()].flatMap((s) => this.samples(s)) };
  }
}

type Collect = (family: Family<Series>) => void;

/** A family of plain-number series: counters and gauges differ only in the type they are exposed as. */
class ValueFamily extends Family<Series> {
  protected create(labels: Labels): Series {
    return { labels, value: 0 };
  }
  protected samples(s: Series): Sample[] {
    return [{ labels: s.labels, value: s.value }];
  }
}

export class CounterFamily extends ValueFamily {
  constructor(registry: Registry, name: string, help: string, labelNames: readonly string[], collect?: Collect) {
    super(registry, name, help, 'counter', labelNames, collect);
  }
}

export class GaugeFamily extends ValueFamily {
  constructor(registry: Registry, name: string, help: string, labelNames: readonly string[], collect?: Collect) {
    super(registry, name, help, 'gauge', labelNames, collect);
  }
}

/** One histogram series: counts per bucket (the last is +Inf), their sum and count. */
export class HistogramSeries {
  private readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Labels,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  /** Cumulative counts, as the exposition format wants them: [le, count] ending with +Inf. */
  cumulative(): Array<[string, number]> {
    let acc = 0;
    return [...this.bounds.map(String), '+Inf'].map((le, i) => [le, (acc += this.counts[i]!)]);
  }
}

export class HistogramFamily extends Family<HistogramSeries> {
  constructor(
    registry: Registry,
    name: string,
    help: string,
    labelNames: readonly string[],
    private readonly bounds: readonly number[],
  ) {
    super(registry, name, help, 'histogram', labelNames);
  }
  protected create(labels: Labels): HistogramSeries {
    return new HistogramSeries(labels, this.bounds);
  }
  protected samples(s: HistogramSeries): Sample[] {
    return [
      ...s.cumulative().map(([le, value]) => ({ metricName: `${this.name}_bucket`, labels: { ...s.labels, le }, value })),
      { metricName: `${this.name}_sum`, labels: s.labels, value: s.sum },
      { metricName: `${this.name}_count`, labels: s.labels, value: s.count },
    ];
  }
}
