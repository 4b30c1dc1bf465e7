import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { RequestLogger } from './request-logger.js';

function capture(level = 'info') {
  const lines: Record<string, unknown>[] = [];
  let children = 0;
  const parent = pino(
    { level, onChild: () => children++ },
    new Writable({ write: (chunk: Buffer, _enc, done) => done(void lines.push(JSON.parse(chunk.toString()))) }),
  );
  return { parent, lines, children: () => children };
}

describe('RequestLogger', () => {
  it('makes no child logger for a request that logs nothing', () => {
    const { parent, children } = capture();
    const log = RequestLogger.factory(parent, { reqId: 'r-1' }, {});
    assert.equal(log.level, 'info');
    log.debug('below the level'); // pino drops it, but the child is made to ask
    const quiet = RequestLogger.factory(parent, { reqId: 'r-2' }, {});
    assert.equal(quiet.level, 'info');
    assert.equal(children(), 1);
  });

  it('logs through one child with the request id, in every form pino takes', () => {
    const { parent, lines, children } = capture('debug');
    const log = RequestLogger.factory(parent, { reqId: 'r-3' }, {});
    log.error({ err: new Error('boom'), requestId: 'r-3' }, 'internal error');
    log.info('plain %s', 'message');
    log.debug({ n: 1 }, 'debug line');
    assert.equal(children(), 1);
    assert.deepEqual(
      lines.map((l) => [l.reqId, l.msg, l.level]),
      [
        ['r-3', 'internal error', 50],
        ['r-3', 'plain message', 30],
        ['r-3', 'debug line', 20],
      ],
    );
    assert.equal((lines[0]!.err as { message: string }).message, 'boom');
    const grandchild = log.child({ extra: true });
    grandchild.warn('from a child');
    assert.deepEqual([lines[3]!.reqId, lines[3]!.extra], ['r-3', true]);
  });

  it('keeps a route’s own level, and a level set on it to itself', () => {
    const { parent, lines } = capture('warn');
    const log = RequestLogger.factory(parent, { reqId: 'r-4' }, { level: 'debug' });
    assert.equal(log.level, 'debug');
    log.info('shown at the route’s level');
    assert.equal(lines.length, 1);
    log.level = 'error';
    assert.equal(log.level, 'error');
    assert.equal(parent.level, 'warn');
    log.warn('now below it');
    assert.equal(lines.length, 1);
  });
});
