import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseMetadata } from './path-secret-id.js';
import { cidrSubset, isExpired, validRoleName, type SecretIdEntry } from './store.js';

describe('AppRole helpers', () => {
  it('cidrSubset: every block within one block of the role, bare addresses as /32 and /128', () => {
    assert.equal(cidrSubset(['10.1.0.0/16'], ['10.0.0.0/8']), true);
    assert.equal(cidrSubset(['10.1.0.0/16', '192.168.1.0/24'], ['10.0.0.0/8', '192.168.0.0/16']), true);
    assert.equal(cidrSubset(['10.0.0.0/8'], ['10.1.0.0/16']), false, 'wider than the role');
    assert.equal(cidrSubset(['127.0.0.0/8'], ['10.0.0.0/8']), false);
    assert.equal(cidrSubset(['10.0.0.5'], ['10.0.0.0/24']), true);
    assert.equal(cidrSubset(['10.0.0.0/24'], ['10.0.0.5']), false);
    assert.equal(cidrSubset(['2001:db8:1::/48'], ['2001:db8::/32']), true);
    assert.equal(cidrSubset(['2001:db8::/32'], ['10.0.0.0/8']), false, 'another family');
    assert.equal(cidrSubset(['10.0.0.0/8'], []), true, 'a role without blocks binds nothing');
  });

  it('parseMetadata: a JSON object of strings or key=value pairs, nothing else', () => {
    assert.deepEqual(parseMetadata('{"a":"1","b":"2"}'), { a: '1', b: '2' });
    assert.deepEqual(parseMetadata({ a: 'x' }), { a: 'x' });
    assert.deepEqual(parseMetadata('a=1, b=2'), { a: '1', b: '2' });
    assert.deepEqual(parseMetadata(''), {});
    assert.deepEqual(parseMetadata(undefined), {});
    const proto = parseMetadata('{"__proto__":"x"}');
    assert.equal(Object.getPrototypeOf(proto), Object.prototype);
    assert.equal(Object.getOwnPropertyDescriptor(proto, '__proto__')?.value, 'x');
    for (const bad of ['{"a":1}', '[]', '{', 'novalue', '=x', 'null', 42]) {
      assert.throws(() => parseMetadata(bad), /metadata/, String(bad));
    }
    const many = JSON.stringify(Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])));
    assert.throws(() => parseMetadata(many), /more than 64 keys/);
  });

  it("validRoleName: Vault's names, at most 4096 bytes", () => {
    for (const ok of ['web', 'a', 'a.b-c_d', 'a..b', 'constructor', 'A1']) assert.equal(validRoleName(ok), true, ok);
    for (const bad of ['', '..', '.a', 'a.', '-a', 'a b', 'a/b', 'ü', 'a\u0000b', 'x'.repeat(4097)]) {
      assert.equal(validRoleName(bad), false, JSON.stringify(bad.slice(0, 20)));
    }
    assert.equal(validRoleName('x'.repeat(4096)), true);
  });

  it('isExpired: at the expiration time, and never without one', () => {
    const entry = (expiration_time: string) => ({ expiration_time }) as SecretIdEntry;
    assert.equal(isExpired(entry(''), Date.now() + 1e12), false);
    assert.equal(isExpired(entry('2026-01-01T00:00:00.000Z'), Date.parse('2026-01-01T00:00:00.000Z')), true);
    assert.equal(isExpired(entry('2026-01-01T00:00:00.000Z'), Date.parse('2025-12-31T23:59:59.999Z')), false);
  });
});
