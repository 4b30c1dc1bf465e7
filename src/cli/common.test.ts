import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDuration as serverParseDuration } from '../core/fields.js';
import { parseDuration } from './common.js';

/** What the CLI's duration flag says of a value: the text it sends, or its refusal. */
function cli(value: string): string {
  try {
    return `ok ${parseDuration(value)}`;
  } catch (err) {
    return `refused: ${(err as Error).message}`;
  }
}

/** What the server's field parser says of the same value. */
function server(value: string): string {
  try {
    return `ok ${serverParseDuration(value, 'ttl')}`;
  } catch (err) {
    return `refused: ${(err as Error).message}`;
  }
}

describe('duration flags: the CLI and the server give the same answer', () => {
  const table = [
    '0',
    '90',
    '90s',
    '1h30m',
    '1.5h',
    '250ms',
    '7d',
    '1d12h',
    '-1',
    '-5m',
    '5x',
    '1.5',
    '9223372036',
    '9223372037',
    '106752d',
  ];
  for (const value of table) {
    it(JSON.stringify(value), () => {
      assert.equal(cli(value).startsWith('ok'), server(value).startsWith('ok'), `${cli(value)} / ${server(value)}`);
    });
  }

  it('the CLI sends the text as written; the server reads whole seconds', () => {
    assert.equal(cli(' 1h30m '), 'ok 1h30m');
    assert.equal(server('1h30m'), 'ok 5400');
    assert.equal(server('1500ms'), 'ok 1');
  });

  it('refusals say why', () => {
    assert.equal(cli('5x'), 'refused: invalid duration "5x" (use e.g. 30s, 5m, 1h30m, 7d or seconds)');
    assert.equal(cli('-5m'), 'refused: invalid duration "-5m" (must not be negative)');
    assert.equal(
      cli('9223372037'),
      'refused: invalid duration "9223372037" (at most 9223372036 seconds (about 292 years))',
    );
    assert.equal(
      server('5x'),
      'refused: invalid duration for field "ttl": expected seconds or a duration such as "1h30m"',
    );
    assert.equal(server('-5m'), 'refused: invalid duration for field "ttl": must not be negative');
    assert.equal(
      server('106752d'),
      'refused: invalid duration for field "ttl": at most 9223372036 seconds (about 292 years)',
    );
  });
});
