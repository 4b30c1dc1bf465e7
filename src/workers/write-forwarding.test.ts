import assert from 'node:assert/strict';
import { MessageChannel } from 'node:worker_threads';
import { after, before, describe, it } from 'node:test';
import { startServer, type InProcessServer } from '../../test/support.js';
import { rawBodyRequest } from '../core/raw-body.js';
import { handleRequest, type IncomingRequest } from '../core/request/index.js';
import { forwardingWrites, serveForwardedWrites, type ServeRequest } from './write-forwarding.js';

/**
 * The two ends of write forwarding over a real port, on a real server's core: the "first thread" serves with the
 * core, and the "other thread" serves locally with the same core, so that where a request ran is told only by
 * which end took it.
 */
describe('write forwarding between server threads', () => {
  let server: InProcessServer;
  const ranLocally: string[] = [];
  const ranForwarded: string[] = [];
  let forwardedCount = 0;
  const internal: string[] = [];
  let channel: MessageChannel;
  let serve: ServeRequest;

  const request = (verb: IncomingRequest['verb'], path: string, body: Record<string, unknown> = {}) =>
    serve({ verb, path, query: {}, body, token: server.rootToken, requestId: `req-${path}-${verb}` });

  before(async () => {
    server = await startServer();
    const core = server.cofre.core;
    channel = new MessageChannel();
    serveForwardedWrites(
      [channel.port1],
      (req) => {
        ranForwarded.push(`${req.verb} ${req.path}`);
        if (req.path === 'sys/boom') throw new Error('a failure that is not the caller’s');
        return handleRequest(core, req);
      },
      (err, req) => internal.push(`${req.requestId}: ${(err as Error).message}`),
    );
    const local: ServeRequest = (req) => {
      ranLocally.push(`${req.verb} ${req.path}`);
      return handleRequest(core, req);
    };
    serve = forwardingWrites(core, channel.port2, local, () => forwardedCount++);
  });
  after(async () => {
    channel.port1.close();
    await server.stop();
  });

  it('hands writes to the first thread and serves reads itself, with the same answers', async () => {
    const written = await request('PUT', 'secret/data/app', { data: { password: 'p1' } });
    assert.equal(written.mountType, 'kv');
    assert.equal(written.response?.data?.version, 1);
    assert.deepEqual(ranForwarded, ['PUT secret/data/app']);
    assert.equal(forwardedCount, 1);

    const read = await request('GET', 'secret/data/app');
    assert.deepEqual((read.response?.data?.data as Record<string, unknown>) ?? {}, { password: 'p1' });
    assert.deepEqual(ranLocally, ['GET secret/data/app']);

    await request('DELETE', 'secret/data/app');
    await request('PATCH', 'secret/data/app', { data: { password: 'p2' } }).catch(() => undefined);
    assert.deepEqual(ranForwarded.slice(1), ['DELETE secret/data/app', 'PATCH secret/data/app']);
    assert.equal(forwardedCount, 3);
  });

  it('serves a write whose path stores nothing or needs no token, one without a token, and raw bytes, where it arrived', async () => {
    ranLocally.length = 0;
    const before = forwardedCount;
    const hashed = await request('POST', 'sys/tools/hash', { input: Buffer.from('x').toString('base64') });
    assert.equal(typeof hashed.response?.data?.sum, 'string');
    await request('POST', 'sys/capabilities-self', { paths: ['secret/data/app'] });
    await serve({
      verb: 'POST',
      path: 'sys/storage/raft/snapshot-force',
      query: {},
      body: rawBodyRequest((async function* () {})()),
      token: server.rootToken,
      requestId: 'raw',
    }).catch(() => undefined);
    // Paths served without a token (a login's password check is the heaviest work there is) stay too.
    await serve({
      verb: 'POST',
      path: 'sys/unseal',
      query: {},
      body: { reset: true },
      token: undefined,
      requestId: 'unseal',
    });
    // A write with no token at all is refused where it arrives.
    await assert.rejects(
      serve({ verb: 'PUT', path: 'secret/data/x', query: {}, body: {}, token: undefined, requestId: 'anon' }),
      (err: { status?: number }) => err.status === 403,
    );
    assert.deepEqual(ranLocally, [
      'POST sys/tools/hash',
      'POST sys/capabilities-self',
      'POST sys/storage/raft/snapshot-force',
      'POST sys/unseal',
      'PUT secret/data/x',
    ]);
    assert.equal(forwardedCount, before);
    // A wrapped answer is stored: that one goes to the first thread.
    const wrapped = await serve({
      verb: 'POST',
      path: 'sys/tools/random',
      query: {},
      body: {},
      token: server.rootToken,
      requestId: 'wrapped',
      wrapTtl: 60,
    });
    assert.equal(typeof wrapped.response?.wrapInfo?.token, 'string');
    assert.equal(ranForwarded.at(-1), 'POST sys/tools/random');
    assert.equal(forwardedCount, before + 1);
  });

  it('passes the first thread’s refusals on with their status and message', async () => {
    const refusal = await serve({
      verb: 'PUT',
      path: 'secret/data/app',
      query: {},
      body: { data: {} },
      token: 'not-a-token',
      requestId: 'r1',
    }).then(
      () => assert.fail('a bad token was let through'),
      (err: { status?: number; message: string }) => err,
    );
    assert.equal(refusal.status, 403);
    assert.match(refusal.message, /permission denied/);

    const traversal = await request('PUT', 'secret/data/../../sys/seal').then(
      () => assert.fail('a traversal was let through'),
      (err: { status?: number }) => err,
    );
    assert.equal(traversal.status, 400);
    assert.equal(ranForwarded.at(-1), 'PUT secret/data/../../sys/seal', 'an invalid path is answered by the first');
  });

  it('answers an internal failure as one, logged where it happened under the request id', async () => {
    const failure = await request('PUT', 'sys/boom').then(
      () => assert.fail('expected a failure'),
      (err: { status?: number; message: string }) => err,
    );
    assert.equal(failure.status, undefined, 'not passed on as the caller’s error');
    assert.equal(failure.message, 'internal error on the first server thread', 'its words stay in the first’s log');
    assert.deepEqual(internal, ['req-sys/boom-PUT: a failure that is not the caller’s']);
  });

  it('sends back only what the answer is made of, and reports an answer that cannot cross instead of dying', async () => {
    const core = server.cofre.core;
    const pair = new MessageChannel();
    let answer: Record<string, unknown> = {};
    serveForwardedWrites([pair.port1], async () => ({ response: answer as never, mountType: 'kv' }));
    const send = forwardingWrites(core, pair.port2, () => assert.fail('a write was served locally'));
    const put = () =>
      send({ verb: 'PUT', path: 'secret/data/x', query: {}, body: {}, token: server.rootToken, requestId: 'inner' });
    try {
      answer = {
        data: { a: 1 },
        warnings: ['w'],
        lease: { leaseId: 'l', ttl: 1, renewable: false },
        status: 201,
        // What the core acts on where the request ran: a lease's revocation data, a login to issue, a rewrap.
        secret: { type: 'creds', internal: { username: 'u' }, ttl: 1, maxTtl: 1, renewable: false },
        login: { policies: ['p'], displayName: 'd', ttl: 1, maxTtl: 1 },
        wrap: { ttl: 1, creationPath: 'p', body: '{}' },
      };
      const served = await put();
      assert.deepEqual(served, {
        mountType: 'kv',
        response: { data: { a: 1 }, warnings: ['w'], lease: { leaseId: 'l', ttl: 1, renewable: false }, status: 201 },
      });
      answer = { data: { f: () => 1 } };
      await assert.rejects(put(), /could not be sent between threads/);
      // The port still works.
      answer = { data: { b: 2 } };
      assert.deepEqual((await put()).response, { data: { b: 2 } });
    } finally {
      pair.port1.close();
    }
  });

  it('once the first thread is gone, writes waiting or sent later are refused, and nothing hangs', async () => {
    const lone = new MessageChannel();
    const core = server.cofre.core;
    // A first thread that never answers, then goes away.
    const silent = forwardingWrites(core, lone.port2, (req) => handleRequest(core, req));
    const waiting = silent({
      verb: 'PUT',
      path: 'secret/data/late',
      query: {},
      body: { data: { a: 1 } },
      token: server.rootToken,
      requestId: 'late',
    });
    lone.port1.close();
    await assert.rejects(waiting, (err: { status?: number }) => err.status === 503);
    await assert.rejects(
      silent({ verb: 'POST', path: 'secret/data/later', query: {}, body: {}, token: server.rootToken, requestId: 'x' }),
      (err: { status?: number; message: string }) => err.status === 503 && /stopping/.test(err.message),
    );
    // Reads go on where they arrive.
    const read = await silent({
      verb: 'GET',
      path: 'sys/health',
      query: {},
      body: {},
      token: undefined,
      requestId: 'h',
    });
    assert.equal(read.response?.status ?? 200, 200);
  });
});
