import type { FastifyInstance } from 'fastify';

const ABOVE_INFO = new Set(['warn', 'error', 'fatal', 'silent']);

/**
 * One info line per answered request, as Vault's dev server shows its traffic: method, path, status and time.
 * Never the query string, the headers or the body: they carry tokens and values.
 */
export function logRequests(app: FastifyInstance): void {
  // The level is fixed at start: a server started above info would run the hook only to drop its line.
  if (ABOVE_INFO.has(app.log.level)) return;
  app.addHook('onResponse', (req, reply, done) => {
    const path = req.url.split('?', 1)[0];
    req.log.info(
      { method: req.method, path, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 },
      'request',
    );
    done();
  });
}
