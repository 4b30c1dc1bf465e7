import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { hasherFor } from './audit-format.js';

describe('hasherFor', () => {
  const expected = (salt: Buffer, value: string) =>
    `hmac-sha256:${createHmac('sha256', salt).update(value).digest('hex')}`;

  it('gives each value its HMAC with the device salt, the texts hashed once per device included', () => {
    const salt = randomBytes(32);
    const hash = hasherFor(salt);
    const values = ['', 'false', 'true', 'False', 'TRUE', 'true ', '0', 'x', 'é', 'a'.repeat(20_000)];
    for (let round = 0; round < 2; round++) {
      for (const value of values) assert.equal(hash(value), expected(salt, value), JSON.stringify(value.slice(0, 9)));
    }
  });

  it('keeps devices apart: the same fixed text hashes differently under another salt', () => {
    const [a, b] = [randomBytes(32), randomBytes(32)];
    for (const value of ['', 'false', 'true']) {
      assert.equal(hasherFor(a)(value), expected(a, value));
      assert.equal(hasherFor(b)(value), expected(b, value));
      assert.notEqual(hasherFor(a)(value), hasherFor(b)(value));
    }
  });
});
