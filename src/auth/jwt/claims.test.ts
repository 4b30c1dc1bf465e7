import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { globMatches } from '../glob.js';
import { boundClaimsFailure, boundClaimsProblem, getClaim, mappedMetadata } from './claims.js';

describe('jwt claims', () => {
  const claims = JSON.parse(
    JSON.stringify({
      sub: 'u1',
      n: 5.7,
      ok: true,
      groups: ['dev', 'ops'],
      nested: { 'a/b': { '~x': 'deep' }, list: [{ id: 'first' }] },
    }),
  ) as Record<string, unknown>;

  it('reads claims by name and by JSON pointer, own members only, numbers as whole numbers', () => {
    assert.equal(getClaim(claims, 'sub'), 'u1');
    assert.equal(getClaim(claims, 'n'), 5);
    assert.equal(getClaim(claims, '/groups/1'), 'ops');
    assert.equal(getClaim(claims, '/nested/a~1b/~0x'), 'deep');
    assert.equal(getClaim(claims, '/nested/list/0/id'), 'first');
    assert.equal(getClaim(claims, '/groups/01'), undefined);
    assert.equal(getClaim(claims, '/groups/-'), undefined);
    assert.equal(getClaim(claims, '/sub/x'), undefined);
    for (const inherited of ['constructor', 'toString', '__proto__', '/constructor', '/groups/length', '/sub/length']) {
      assert.equal(getClaim(claims, inherited), undefined, inherited);
    }
  });

  it('globs: "*" is any run of characters, everything else is literal', () => {
    assert.equal(globMatches('refs/heads/*', 'refs/heads/main'), true);
    assert.equal(globMatches('refs/heads/*', 'refs/tags/v1'), false);
    assert.equal(globMatches('*', ''), true);
    assert.equal(globMatches('a*b*c', 'axxbyyc'), true);
    assert.equal(globMatches('a*b*c', 'axxbyy'), false);
    assert.equal(globMatches('a.b', 'axb'), false);
    assert.equal(globMatches('a?c', 'abc'), false);
    assert.equal(globMatches('[ab]', 'a'), false);
    assert.equal(globMatches('**x', 'yyx'), true);
    assert.equal(globMatches('', ''), true);
    assert.equal(globMatches('', 'a'), false);
  });

  it('a long claim against a pattern of many stars is matched in bounded time', () => {
    const value = 'a'.repeat(200_000);
    const started = performance.now();
    assert.equal(globMatches(`${'a*'.repeat(20)}b`, value), false);
    assert.equal(globMatches(`*${':*'.repeat(2)}x`, `repo${':'.repeat(200_000)}`), false);
    assert.ok(performance.now() - started < 2_000, `${performance.now() - started} ms`);
  });

  it('bound claims: every one must match one value, exactly or by glob, scalars and lists', () => {
    assert.equal(boundClaimsFailure({ sub: 'u1', groups: ['x', 'ops'] }, claims, false), undefined);
    assert.equal(boundClaimsFailure({ n: 5, ok: true }, claims, false), undefined);
    assert.match(boundClaimsFailure({ n: '5' }, claims, false)!, /"n" does not match/);
    assert.match(boundClaimsFailure({ ok: 'true' }, claims, false)!, /"ok" does not match/);
    assert.match(boundClaimsFailure({ missing: 'x' }, claims, false)!, /"missing" is missing/);
    assert.match(boundClaimsFailure({ nested: 'x' }, claims, false)!, /not a string, bool, number or list/);
    assert.match(boundClaimsFailure({ sub: 'u*' }, claims, false)!, /does not match/);
    assert.equal(boundClaimsFailure({ sub: 'u*', '/nested/list/0/id': 'fir*' }, claims, true), undefined);
    assert.match(boundClaimsFailure({ groups: 'adm*' }, claims, true)!, /"groups" does not match/);
    assert.match(boundClaimsFailure({ constructor: '*' }, claims, true)!, /"constructor" is missing/);
  });

  it('role writes: bound claim values are scalars or lists of them, strings only for globs', () => {
    assert.equal(boundClaimsProblem({ a: 'x', b: [1, true, 'y'] }, false), undefined);
    assert.match(boundClaimsProblem({ a: [] }, false)!, /non-empty list/);
    assert.match(boundClaimsProblem({ a: { b: 1 } }, false)!, /bound claim "a"/);
    assert.match(boundClaimsProblem({ a: [null] }, false)!, /bound claim "a"/);
    assert.match(boundClaimsProblem({ a: 5 }, true)!, /glob values must be strings/);
  });

  it('claim mappings copy present string claims; anything else present is an error', () => {
    assert.deepEqual(mappedMetadata({ sub: 'user', '/groups/0': 'first', absent: 'x' }, claims), {
      user: 'u1',
      first: 'dev',
    });
    assert.throws(() => mappedMetadata({ groups: 'g' }, claims), /error converting claim "groups" to string/);
    const odd = mappedMetadata({ sub: '__proto__' }, claims);
    assert.equal(Object.getPrototypeOf(odd), Object.prototype);
    assert.deepEqual(Object.keys(odd), ['__proto__']);
  });
});
