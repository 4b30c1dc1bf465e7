import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

/**
 * Liveness, readiness and Prometheus metrics on one port, as the Helm chart's probes expect: /healthz answers
 * while the process runs, /readyz once it is ready (a standby replica is ready: it is waiting for the lease).
 */
export async function startHealthServer(opts: {
  address: string;
  registry: Registry;
  ready: () => boolean;
}): Promise<{ server: Server; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') return void res.writeHead(200).end('ok');
    if (path === '/readyz') return void res.writeHead(opts.ready() ? 200 : 503).end(opts.ready() ? 'ok' : 'not ready');
    if (path === '/metrics') {
      opts.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': opts.registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
      return;
    }
    res.writeHead(404).end();
  });
  const i = opts.address.lastIndexOf(':');
  const host = opts.address.slice(0, i) || '0.0.0.0';
  const port = Number(opts.address.slice(i + 1));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return { server, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
