import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planRenewal } from './renewal.js';

describe('lease renewal plan (src/client/renewal.ts)', () => {
  it('renews at two thirds of what was granted while the renewal grants what was asked', () => {
    assert.deepEqual(planRenewal(3600, 3600, true), { action: 'renew', inMs: 2_400_000 });
    assert.deepEqual(planRenewal(2, 2, true), { action: 'renew', inMs: 1_333 });
  });

  it('replaces the lease before its end once the max TTL caps a renewal, or when it is not renewable', () => {
    assert.deepEqual(planRenewal(30, 9, true), { action: 'replace', inMs: 6_000 });
    assert.deepEqual(planRenewal(2, 1, true), { action: 'replace', inMs: 666 });
    assert.deepEqual(planRenewal(30, 30, false), { action: 'replace', inMs: 20_000 });
    assert.equal(planRenewal(30, 0, true).inMs, 100, 'never a busy loop');
  });
});
