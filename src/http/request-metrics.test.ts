import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, Histogram, Registry } from 'prom-client';
import { REQUEST_DURATION_BUCKETS } from './metrics.js';
import { RequestMetrics } from './request-metrics.js';

/** prom-client's own Counter and Histogram, as the HTTP layer defined them before RequestMetrics. */
function promClientMetrics(registry: Registry): (method: string, code: number, seconds: number) => void {
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
    buckets: REQUEST_DURATION_BUCKETS,
    registers: [registry],
  });
  return (method, code, seconds) => {
    requests.labels(method, String(code)).inc();
    duration.labels(method).observe(seconds);
  };
}

describe('RequestMetrics', () => {
  // On a bound, between two, below the first, above the last, and zero; several methods and codes.
  const requests: [string, number, number][] = [
    ['GET', 200, 0.0005],
    ['GET', 200, 0.0007],
    ['GET', 404, 0.00001],
    ['POST', 200, 0.01],
    ['POST', 204, 3.5],
    ['GET', 200, 2.5],
    ['PUT', 400, 0],
    ['GET', 200, 0.3],
  ];

  it('shows what prom-client’s Counter and Histogram show, in both formats, across several scrapes', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const metrics = new RequestMetrics(ours, REQUEST_DURATION_BUCKETS);
    const reference = promClientMetrics(theirs);
    const feed = (batch: [string, number, number][]) => {
      for (const [method, code, seconds] of batch) {
        metrics.record(method, code, seconds);
        reference(method, code, seconds);
      }
    };
    assert.equal(await ours.metrics(), await theirs.metrics());
    feed(requests);
    const text = await ours.metrics();
    assert.equal(text, await theirs.metrics());
    assert.match(text, /cofre_http_requests_total\{method="GET",code="200"\} 4\n/);
    assert.match(text, /cofre_http_request_duration_seconds_bucket\{le="0.0005",method="GET"\} 2\n/);
    assert.match(text, /cofre_http_request_duration_seconds_bucket\{le="\+Inf",method="POST"\} 2\n/);
    // A scrape hands the counts over once: a second one, and one after more requests, count each request once.
    assert.equal(await ours.metrics(), await theirs.metrics());
    feed(requests.slice(2, 6));
    assert.deepEqual(await ours.getMetricsAsJSON(), await theirs.getMetricsAsJSON());
    assert.equal(await ours.metrics(), await theirs.metrics());
  });

  it('starts again from nothing when the registry is reset, scraped before or not', async () => {
    for (const scrapedBefore of [true, false]) {
      const ours = new Registry();
      const theirs = new Registry();
      const metrics = new RequestMetrics(ours, REQUEST_DURATION_BUCKETS);
      const reference = promClientMetrics(theirs);
      for (const [method, code, seconds] of requests) {
        metrics.record(method, code, seconds);
        reference(method, code, seconds);
      }
      if (scrapedBefore) await ours.metrics();
      ours.resetMetrics();
      theirs.resetMetrics();
      for (const [method, code] of [
        ['POST', 204],
        ['GET', 200],
      ] as const) {
        metrics.record(method, code, 0.002);
        reference(method, code, 0.002);
      }
      assert.equal(await ours.metrics(), await theirs.metrics());
    }
  });

  it('shows the series in the order their first requests came, as prom-client does', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const metrics = new RequestMetrics(ours, REQUEST_DURATION_BUCKETS);
    const reference = promClientMetrics(theirs);
    for (const [method, code, seconds] of [
      ['GET', 200, 0.001],
      ['POST', 200, 0.001],
      ['GET', 500, 0.001],
    ] as const) {
      metrics.record(method, code, seconds);
      reference(method, code, seconds);
    }
    assert.equal(await ours.metrics(), await theirs.metrics());
  });
});
