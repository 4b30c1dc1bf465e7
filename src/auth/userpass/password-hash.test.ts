import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { afterEach, describe, it, mock } from 'node:test';
import {
  checkPassword,
  CURRENT_PARAMS,
  hashPassword,
  MAX_PASSWORD_BYTES,
  needsRehash,
  verifyPassword,
  type PasswordHash,
} from './password-hash.js';

describe('userpass password hashing', () => {
  afterEach(() => mock.restoreAll());

  it('stores a salted scrypt hash with its parameters, never the password', async () => {
    const a = await hashPassword('correct horse');
    const b = await hashPassword('correct horse');
    assert.equal(a.algorithm, 'scrypt');
    assert.deepEqual({ n: a.n, r: a.r, p: a.p }, CURRENT_PARAMS);
    assert.notEqual(a.salt, b.salt, 'a random salt per hash');
    assert.notEqual(a.hash, b.hash, 'so the same password hashes differently');
    assert.equal(Buffer.from(a.hash, 'base64').length, 32);
    assert.ok(!JSON.stringify(a).includes('correct horse'));
    assert.ok(!JSON.stringify(a).includes(Buffer.from('correct horse').toString('base64')));
  });

  it('verifies the right password only, and an unknown user never', async () => {
    const stored = await hashPassword('s3cret');
    assert.equal(await verifyPassword('s3cret', stored), true);
    assert.equal(await verifyPassword('s3cret ', stored), false);
    assert.equal(await verifyPassword('S3cret', stored), false);
    assert.equal(await verifyPassword('s3cret', undefined), false);
  });

  it('compares with timingSafeEqual on digests of equal length, for a match, a mismatch and an unknown user', async () => {
    const stored = await hashPassword('s3cret');
    const spy = mock.method(crypto, 'timingSafeEqual');
    await verifyPassword('s3cret', stored);
    await verifyPassword('wrong', stored);
    await verifyPassword('s3cret', undefined);
    assert.equal(spy.mock.callCount(), 3);
    for (const call of spy.mock.calls) {
      const [actual, expected] = call.arguments as [Buffer, Buffer];
      assert.equal(actual.length, 32);
      assert.equal(expected.length, actual.length);
    }
    assert.deepEqual(
      spy.mock.calls.map((c) => c.result),
      [true, false, false],
    );
  });

  it('an unknown user is hashed with the current parameters, as a wrong password is', async () => {
    const stored = await hashPassword('s3cret');
    const spy = mock.method(crypto, 'scrypt');
    await verifyPassword('wrong', stored);
    await verifyPassword('wrong', undefined);
    assert.equal(spy.mock.callCount(), 2);
    const options = spy.mock.calls.map((c) => {
      const o = c.arguments[3] as unknown as crypto.ScryptOptions;
      return { n: o.N, r: o.r, p: o.p };
    });
    assert.deepEqual(options, [CURRENT_PARAMS, CURRENT_PARAMS]);
  });

  it('a hash made with older parameters still verifies, and is marked for rehashing', async () => {
    const salt = crypto.randomBytes(16);
    const old: PasswordHash = {
      algorithm: 'scrypt',
      n: 1024,
      r: 8,
      p: 1,
      salt: salt.toString('base64'),
      hash: crypto.scryptSync('old-pw', salt, 32, { N: 1024, r: 8, p: 1 }).toString('base64'),
    };
    assert.equal(await verifyPassword('old-pw', old), true);
    assert.equal(await verifyPassword('other', old), false);
    assert.equal(needsRehash(old), true);
    assert.equal(needsRehash(await hashPassword('x')), false);
  });

  it('runs at most two derivations at once, however many logins arrive', async () => {
    let inFlight = 0;
    let most = 0;
    const original = crypto.scrypt;
    mock.method(crypto, 'scrypt', (...args: unknown[]) => {
      inFlight++;
      most = Math.max(most, inFlight);
      const done = args.pop() as (err: Error | null, key: Buffer) => void;
      (original as (...a: unknown[]) => void)(...args, (err: Error | null, key: Buffer) => {
        inFlight--;
        done(err, key);
      });
    });
    const results = await Promise.all(Array.from({ length: 6 }, () => verifyPassword('x', undefined)));
    assert.deepEqual(results, [false, false, false, false, false, false]);
    assert.equal(most, 2);
  });

  it('refuses an empty or over-long password without showing it', () => {
    assert.throws(() => checkPassword(''), /missing password/);
    assert.throws(() => checkPassword(undefined), /missing password/);
    assert.equal(checkPassword('a'.repeat(MAX_PASSWORD_BYTES)), 'a'.repeat(MAX_PASSWORD_BYTES));
    const long = 'é'.repeat(MAX_PASSWORD_BYTES / 2 + 1); // 1026 bytes in 513 characters
    assert.throws(
      () => checkPassword(long),
      (err: Error & { status?: number }) => err.status === 400 && !err.message.includes('é'),
    );
  });
});
