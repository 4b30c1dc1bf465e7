import { Counter, type Metric, type Registry } from 'prom-client';

/**
 * What the HTTP layer counts per request: its method and status code, and its duration. Kept in plain numbers on
 * the request's path and handed to prom-client's registry when it is read: prom-client's labelled children hash
 * their labels and allocate an object on every `inc()` and `observe()`, and that was 6 % of a server thread's read
 * throughput (bench/README.md, "The read path's metrics and loggers"). The registry shows exactly what prom-client's
 * own Counter and Histogram would (src/http/request-metrics.test.ts feeds both the same requests).
 */
export class RequestMetrics {
  /** Requests not yet handed to the counter, by method and status code. */
  private readonly uncounted = new Map<string, Map<number, CountRow>>();
  /** The same rows in the order they came, which is the order prom-client shows its series in. */
  private readonly rows: CountRow[] = [];
  private readonly requests: Counter<'method' | 'code'>;
  private readonly durations: DurationHistogram;

  constructor(registry: Registry, buckets: readonly number[]) {
    const { rows, uncounted } = this;
    const requests = new Counter({
      name: 'cofre_http_requests_total',
      help: 'HTTP requests by method and status code.',
      labelNames: ['method', 'code'] as const,
      registers: [registry],
      collect() {
        for (const row of rows) {
          if (row.count > 0) row.add(row.count);
          row.count = 0;
        }
      },
    });
    // A reset forgets the requests not yet handed over too, as the histogram forgets its own, and the order of
    // the series starts again with the next requests, as prom-client's does.
    const reset = requests.reset.bind(requests);
    requests.reset = () => {
      reset();
      rows.length = 0;
      uncounted.clear();
    };
    this.requests = requests;
    this.durations = new DurationHistogram(
      'cofre_http_request_duration_seconds',
      'Time to answer an HTTP request.',
      buckets,
    );
    // Not one of prom-client's classes, but what its registry asks of a metric (name, get, reset): see the class.
    // (So getSingleMetric() of its name gives an object with no observe(), labels() or startTimer().)
    registry.registerMetric(this.durations as unknown as Metric);
  }

  record(method: string, code: number, seconds: number): void {
    let byCode = this.uncounted.get(method);
    if (!byCode) this.uncounted.set(method, (byCode = new Map()));
    let row = byCode.get(code);
    if (!row) {
      const child = this.requests.labels(method, String(code));
      byCode.set(code, (row = { count: 0, add: (n) => child.inc(n) }));
      this.rows.push(row);
    }
    row.count++;
    this.durations.observe(method, seconds);
  }
}

interface CountRow {
  count: number;
  add(n: number): void;
}

interface DurationRow {
  /** Labels other than `le`, one object per method: prom-client's registry caches their text by identity. */
  labels: { method: string };
  /** Observations per bucket, not cumulative; one above the last bound counts only in `count` (+Inf). */
  perBucket: number[];
  sum: number;
  count: number;
}

interface ExportedValue {
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  value: number;
  metricName: string;
  exemplar: null | undefined;
}

/**
 * A histogram by method with prom-client's exposition: the same buckets, the same `_bucket`/`_sum`/`_count` series,
 * and the same two forms a registry reads (`getForPromString` for the text format, `get` for JSON).
 */
class DurationHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private rows = new Map<string, DurationRow>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
  ) {}

  observe(method: string, seconds: number): void {
    let row = this.rows.get(method);
    if (!row) {
      row = { labels: { method }, perBucket: this.bounds.map(() => 0), sum: 0, count: 0 };
      this.rows.set(method, row);
    }
    let bucket = 0;
    while (bucket < this.bounds.length && seconds > this.bounds[bucket]!) bucket++;
    if (bucket < this.bounds.length) row.perBucket[bucket]!++;
    row.sum += seconds;
    row.count++;
  }

  reset(): void {
    this.rows = new Map();
  }

  getForPromString(): { name: string; help: string; type: string; aggregator: string; values: ExportedValue[] } {
    const values: ExportedValue[] = [];
    for (const row of this.rows.values()) {
      let below = 0;
      this.bounds.forEach((bound, i) => {
        below += row.perBucket[i]!;
        values.push({
          labels: { le: bound },
          sharedLabels: row.labels,
          value: below,
          metricName: `${this.name}_bucket`,
          exemplar: null,
        });
      });
      values.push(
        {
          labels: { le: '+Inf' },
          sharedLabels: row.labels,
          value: row.count,
          metricName: `${this.name}_bucket`,
          exemplar: null,
        },
        { labels: {}, sharedLabels: row.labels, value: row.sum, metricName: `${this.name}_sum`, exemplar: undefined },
        {
          labels: {},
          sharedLabels: row.labels,
          value: row.count,
          metricName: `${this.name}_count`,
          exemplar: undefined,
        },
      );
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  get(): Promise<ReturnType<DurationHistogram['getForPromString']>> {
    const data = this.getForPromString();
    // The JSON form has one set of labels per value, as prom-client's Histogram.get() gives it.
    data.values = data.values.map(({ sharedLabels, labels, ...value }) => ({
      ...value,
      labels: { ...labels, ...sharedLabels },
    }));
    return Promise.resolve(data);
  }
}
