/**
 * The webhook's HTTPS server: POST /mutate takes an AdmissionReview and answers one; GET /healthz answers while
 * the process runs. The API server only talks TLS to webhooks, so there is no plain-HTTP mode. The certificate
 * files are re-read every minute, so a certificate renewed by cert-manager (or a new Secret) is served without a
 * restart.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { InjectorDefaults } from './annotations.js';
import type { AgentSettings } from './mutate.js';
import { BadReviewError, review } from './review.js';

/** Pods are at most ~1.5 MiB in etcd; a review holds one (twice on updates), so this leaves room and no more. */
const MAX_BODY_BYTES = 8 * 1024 * 1024;
const CERT_RELOAD_MS = 60_000;

export interface InjectorServerOptions {
  /** host:port, or :port for every interface. */
  listen: string;
  tlsCertFile: string;
  tlsKeyFile: string;
  defaults: InjectorDefaults;
  agent: AgentSettings;
  log: (msg: string, fields?: object) => void;
  /** How often the certificate files are re-read; a minute unless a test wants it sooner. */
  certReloadMs?: number;
}

export interface InjectorServer {
  server: Server;
  port: number;
  close(): Promise<void>;
}

class BodyTooLargeError extends Error {}

function readBody(req: import('node:http').IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new BodyTooLargeError(`request body over ${MAX_BODY_BYTES} bytes`));
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function splitAddress(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  const port = Number(listen.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`listen address: expected host:port or :port, got ${JSON.stringify(listen)}`);
  return { host: listen.slice(0, i).replace(/^\[|\]$/g, '') || '0.0.0.0', port };
}

export async function startInjectorServer(opts: InjectorServerOptions): Promise<InjectorServer> {
  const { host, port } = splitAddress(opts.listen);
  const readPair = () => ({ cert: readFileSync(opts.tlsCertFile), key: readFileSync(opts.tlsKeyFile) });
  let pair = readPair();

  const server = createServer({ ...pair, minVersion: 'TLSv1.2' }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz' && req.method === 'GET') return void res.writeHead(200).end('ok');
    if (path !== '/mutate') return void res.writeHead(404).end('not found');
    if (req.method !== 'POST') return void res.writeHead(405, { allow: 'POST' }).end('use POST');
    const started = performance.now();
    // The API server sends a Content-Length: refuse an oversized body before reading it, and let the client finish
    // sending (bounded by requestTimeout) so that it reads the answer rather than a reset connection.
    if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) {
      res.writeHead(413, { connection: 'close' }).end(`request body over ${MAX_BODY_BYTES} bytes`);
      return void req.resume();
    }
    readBody(req).then(
      (body) => {
        let parsed: unknown;
        try {
          parsed = JSON.parse(body.toString('utf8'));
        } catch {
          return void res.writeHead(400).end('expected a JSON AdmissionReview');
        }
        try {
          const result = review(parsed, opts.defaults, opts.agent);
          const request = (parsed as { request: { uid: string; namespace?: string; object?: unknown } }).request;
          const meta = (request.object as { metadata?: { name?: string; generateName?: string } } | undefined)
            ?.metadata;
          opts.log('admission', {
            uid: request.uid,
            namespace: request.namespace,
            pod: meta?.name || (meta?.generateName ? `${meta.generateName}*` : undefined),
            ...result.outcome,
            ms: Math.round((performance.now() - started) * 10) / 10,
          });
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result.review));
        } catch (err) {
          if (err instanceof BadReviewError) return void res.writeHead(400).end(err.message);
          opts.log('admission failed', { error: (err as Error).message });
          res.writeHead(500).end('internal error');
        }
      },
      (err: Error) => {
        if (err instanceof BodyTooLargeError) {
          if (!res.headersSent) res.writeHead(413).end(err.message);
        } else if (!res.headersSent) res.writeHead(400).end('could not read the request');
      },
    );
  });
  server.requestTimeout = 30_000;

  const reload = setInterval(() => {
    try {
      const next = readPair();
      if (next.cert.equals(pair.cert) && next.key.equals(pair.key)) return;
      server.setSecureContext({ ...next, minVersion: 'TLSv1.2' });
      pair = next;
      opts.log('serving certificate reloaded');
    } catch (err) {
      // A half-written pair (mid-rotation) is retried next time; the current certificate keeps serving.
      opts.log('could not reload the serving certificate', { error: (err as Error).message });
    }
  }, opts.certReloadMs ?? CERT_RELOAD_MS);
  reload.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(reload);
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
