import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { RequestMetrics } from './request-metrics.js';
import type { ExpirationStats } from '../core/expiration.js';
import type { StorageAdapter } from '../storage/open.js';
import type { Response } from '../core/backend.js';
import { badRequest } from '../core/errors.js';

/** The upper bounds (seconds) of cofre_http_request_duration_seconds' buckets. */
export const REQUEST_DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** Prometheus metrics of the HTTP layer; sys/metrics?format=prometheus serves the registry. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'cofre_' });
  const requests = new RequestMetrics(registry, REQUEST_DURATION_BUCKETS);
  const recordRequest = (method: string, code: number, seconds: number): void => requests.record(method, code, seconds);
  return { registry, recordRequest };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** A gauge of a number another part keeps, read when Prometheus scrapes. */
function gaugeOf(registry: Registry, name: string, help: string, read: () => number): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}

/** A counter of a total since start that another part keeps, read when Prometheus scrapes. */
function counterOf(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      // The other part keeps the total; a counter cannot be set, so it is reset to zero and raised to it.
      this.reset();
      this.inc(read());
    },
  });
}

/**
 * The expiration manager's numbers, read when Prometheus scrapes. Totals since start are counters (`_total`, so
 * that rate() works and a restart reads as a reset); how many leases there are now is a gauge.
 */
export function registerLeaseMetrics(registry: Registry, stats: () => ExpirationStats): void {
  gaugeOf(registry, 'cofre_expire_leases', 'Leases with an armed expiry timer on this node.', () => stats().leases);
  gaugeOf(
    registry,
    'cofre_expire_pending_retries',
    'Leases whose revocation failed and waits for a retry.',
    () => stats().pendingRetries,
  );
  counterOf(registry, 'cofre_expire_revoked_total', 'Leases revoked since start.', () => stats().revoked);
  counterOf(
    registry,
    'cofre_expire_revoke_failures_total',
    'Failed revocation attempts since start.',
    () => stats().revokeFailures,
  );
}

/** The upper bounds (seconds) of cofre_storage_commit_duration_seconds' buckets: a healthy disk's commit is a few ms. */
export const COMMIT_DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/**
 * The store's side of this server (thread): what reached it, and how long each commit took (src/storage/commit-times.ts).
 * A durable write waits for its commit, so the commits' tail is the floor of the writes' tail.
 */
export function registerStorageMetrics(registry: Registry, storage: StorageAdapter): void {
  const commitTime = new Histogram({
    name: 'cofre_storage_commit_duration_seconds',
    help: 'Time the store took to commit each group of writes (SQLite: the transaction and its fsync; PostgreSQL: the batch statement and its commit).',
    buckets: COMMIT_DURATION_BUCKETS,
    registers: [registry],
  });
  storage.onCommit((seconds) => commitTime.observe(seconds));
  counterOf(
    registry,
    'cofre_storage_commits_total',
    'Commits that carried writes of this server.',
    () => storage.stats().commits,
  );
  counterOf(
    registry,
    'cofre_storage_writes_total',
    'Writes (put, delete, transaction) the store committed.',
    () => storage.stats().writes,
  );
  counterOf(
    registry,
    'cofre_storage_reads_total',
    'Reads that reached the store (not answered by the read cache).',
    () => storage.stats().reads,
  );
}

/**
 * Counts the writes a server thread hands to the first thread (src/workers/write-forwarding.ts), as Vault counts
 * the requests a standby forwards to the active node; registered on the threads that forward.
 */
export function registerForwardedWrites(registry: Registry): () => void {
  const counter = new Counter({
    name: 'cofre_forwarded_writes_total',
    help: 'Writes this server thread handed to the first server thread, which serves every write.',
    registers: [registry],
  });
  return () => counter.inc();
}

/** One aggregate of go-metrics, as Vault's JSON metrics show counters and samples. */
export interface SampledValue {
  Name: string;
  Count: number;
  Rate: number;
  Sum: number;
  Min: number;
  Max: number;
  Mean: number;
  Stddev: number;
  Labels: Record<string, string>;
}

/** Vault's JSON metrics (go-metrics' MetricsSummary), what sys/metrics answers without ?format=prometheus. */
export interface MetricsSummary {
  Timestamp: string;
  Gauges: { Name: string; Value: number; Labels: Record<string, string> }[];
  Points: { Name: string; Points: number[] }[];
  Counters: SampledValue[];
  Samples: SampledValue[];
}

/** Go's time.Time layout "2006-01-02 15:04:05 -0700 MST", in UTC, as go-metrics stamps its intervals. */
function goTimestamp(at: Date): string {
  return `${at.toISOString().slice(0, 19).replace('T', ' ')} +0000 UTC`;
}

function stringLabels(labels: Partial<Record<string, string | number>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(labels)) if (value !== undefined) out[key] = String(value);
  return out;
}

/**
 * The registry in Vault's JSON shape. Prometheus keeps totals since start where go-metrics keeps 10-second
 * intervals, so: a counter is one aggregate holding its total (Count 1, Sum the total, Rate the total per second
 * of uptime); a histogram is one aggregate per label set with its count, sum and mean (Min and Max are not kept
 * by a histogram, so they are 0). Names stay Prometheus' (cofre_http_requests_total).
 */
export async function metricsSummary(registry: Registry, at = new Date()): Promise<MetricsSummary> {
  const uptime = Math.max(process.uptime(), 1);
  const summary: MetricsSummary = { Timestamp: goTimestamp(at), Gauges: [], Points: [], Counters: [], Samples: [] };
  for (const metric of await registry.getMetricsAsJSON()) {
    const type = String(metric.type);
    if (type === 'gauge') {
      for (const v of metric.values) {
        summary.Gauges.push({ Name: metric.name, Value: v.value, Labels: stringLabels(v.labels) });
      }
    } else if (type === 'counter') {
      for (const v of metric.values) {
        summary.Counters.push({
          Name: metric.name,
          Count: 1,
          Rate: v.value / uptime,
          Sum: v.value,
          Min: v.value,
          Max: v.value,
          Mean: v.value,
          Stddev: 0,
          Labels: stringLabels(v.labels),
        });
      }
    } else {
      // Histograms and summaries: _count and _sum per label set (buckets and quantiles are left out).
      const byLabels = new Map<string, SampledValue>();
      for (const v of metric.values as {
        value: number;
        labels: Record<string, string | number>;
        metricName?: string;
      }[]) {
        const suffix = v.metricName?.slice(metric.name.length);
        if (suffix !== '_count' && suffix !== '_sum') continue;
        const labels = stringLabels(v.labels);
        const key = JSON.stringify(labels);
        let sample = byLabels.get(key);
        if (!sample) {
          sample = { Name: metric.name, Count: 0, Rate: 0, Sum: 0, Min: 0, Max: 0, Mean: 0, Stddev: 0, Labels: labels };
          byLabels.set(key, sample);
        }
        if (suffix === '_count') sample.Count = v.value;
        else sample.Sum = v.value;
      }
      for (const sample of byLabels.values()) {
        sample.Mean = sample.Count > 0 ? sample.Sum / sample.Count : 0;
        sample.Rate = sample.Sum / uptime;
        summary.Samples.push(sample);
      }
    }
  }
  return summary;
}

/** sys/metrics: Vault answers JSON by default, Prometheus text for format=prometheus, and 400 for any other. */
export async function metricsResponse(registry: Registry, format: string): Promise<Response> {
  if (format === 'prometheus') return { rawBody: await registry.metrics(), contentType: registry.contentType };
  if (format !== '') throw badRequest(`metric response format "${format}" unknown`);
  return { rawBody: await metricsSummary(registry), contentType: 'application/json' };
}
