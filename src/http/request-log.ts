import type { FastifyInstance } from 'fastify';

/**
 * One info line per answered request, as Vault's dev server shows its traffic: method, path, status and time.
 * Never the query string, the headers or the body: they carry tokens and values.
 */
export function logRequests(app: FastifyInstance): void {
  app.addHook('onResponse', async (req, reply) => {
    const path = req.url.split('?', 1)[0];
    req.log.info(
      { method: req.method, path, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 },
      'request',
    );
  });
}
