import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDevLogLine } from './dev-log.js';

describe('dev log lines', () => {
  it('turn pino JSON into a readable line without pino and Fastify bookkeeping', () => {
    const json = JSON.stringify({
      level: 30,
      time: Date.UTC(2026, 11, 2, 17, 40),
      pid: 1,
      hostname: 'h',
      reqId: 'x',
      method: 'GET',
      path: '/v1/sys/health',
      status: 200,
      msg: 'request',
    });
    assert.equal(
      formatDevLogLine(json),
      '2026-12-02T17:40:00.000Z [INFO]  request: method=GET path=/v1/sys/health status=200',
    );
  });

  it('leave a line that is not JSON as it is', () => {
    assert.equal(formatDevLogLine('plain text'), 'plain text');
  });
});
