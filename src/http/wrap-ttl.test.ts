import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CofreError } from '../core/errors.js';
import { wrapTtlOf } from './wrap-ttl.js';

describe('X-Vault-Wrap-TTL', () => {
  it('reads seconds and Go-style durations, as Vault’s parseutil does', () => {
    assert.equal(wrapTtlOf('60'), 60);
    assert.equal(wrapTtlOf('5m'), 300);
    assert.equal(wrapTtlOf('1h30m'), 5400);
    assert.equal(wrapTtlOf('1.5s'), 1);
    assert.equal(wrapTtlOf(['10s', '20s']), 20);
  });

  it('absent, empty or zero asks for no wrapping', () => {
    assert.equal(wrapTtlOf(undefined), 0);
    assert.equal(wrapTtlOf(''), 0);
    assert.equal(wrapTtlOf('0'), 0);
    assert.equal(wrapTtlOf('0s'), 0);
  });

  it('refuses anything else with a 400 that names the header, echoing at most a short value', () => {
    for (const bad of ['soon', '-1', '-5m', '500ms', '1h-', '5 m', '1e3']) {
      assert.throws(
        () => wrapTtlOf(bad),
        (err: unknown) => err instanceof CofreError && err.status === 400 && /X-Vault-Wrap-TTL/.test(err.message),
        bad,
      );
    }
    const long = 'x'.repeat(10_000);
    assert.throws(
      () => wrapTtlOf(long),
      (err: unknown) => err instanceof CofreError && err.message.length < 200,
    );
  });
});
