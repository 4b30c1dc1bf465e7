import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ExpirationStats } from '../core/expiration.js';

/** Prometheus metrics of the HTTP layer; sys/metrics?format=prometheus serves the registry. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'cofre_' });
  const requests = new Counter({
    name: 'cofre_http_requests_total',
    help: 'HTTP requests by method and status code.',
    labelNames: ['method', 'code'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'cofre_http_request_duration_seconds',
    help: 'Time to answer an HTTP request.',
    labelNames: ['method'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  return { registry, requests, duration };
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * The expiration manager's numbers, read when Prometheus scrapes. Totals since start are counters (`_total`, so
 * that rate() works and a restart reads as a reset); how many leases there are now is a gauge.
 */
export function registerLeaseMetrics(registry: Registry, stats: () => ExpirationStats): void {
  const gauge = (name: string, help: string, pick: (s: ExpirationStats) => number): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(pick(stats()));
      },
    });
  };
  const counter = (name: string, help: string, pick: (s: ExpirationStats) => number): void => {
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        // The manager keeps the total; a counter cannot be set, so it is reset to zero and raised to it.
        this.reset();
        this.inc(pick(stats()));
      },
    });
  };
  gauge('cofre_expire_leases', 'Leases with an armed expiry timer on this node.', (s) => s.leases);
  gauge(
    'cofre_expire_pending_retries',
    'Leases whose revocation failed and waits for a retry.',
    (s) => s.pendingRetries,
  );
  counter('cofre_expire_revoked_total', 'Leases revoked since start.', (s) => s.revoked);
  counter('cofre_expire_revoke_failures_total', 'Failed revocation attempts since start.', (s) => s.revokeFailures);
}
