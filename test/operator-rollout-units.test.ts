// The small parts of the operator's rollouts and leases, without a cluster: the label selector as a query, which
// lease IDs a CofreSecret may act on, follow-ups where the earliest time wins, and the shared lease timing rules.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { reissueAt, renewAt } from '../src/core/lease-timing.js';
import { selectorString } from '../src/kube/operator/completeness.js';
import { FollowUps } from '../src/kube/operator/follow-ups.js';
import { isLeaseOf } from '../src/kube/operator/sources.js';

describe('operator rollouts and leases: small parts', () => {
  it('writes a label selector as the API query string, expressions included', () => {
    assert.equal(
      selectorString({
        matchLabels: { app: 'web', tier: 'front' },
        matchExpressions: [
          { key: 'env', operator: 'In', values: ['prod', 'stage'] },
          { key: 'canary', operator: 'DoesNotExist' },
          { key: 'zone', operator: 'Exists' },
          { key: 'team', operator: 'NotIn', values: ['x'] },
        ],
      }),
      'app=web,tier=front,env in (prod,stage),!canary,zone,team notin (x)',
    );
    assert.equal(selectorString(undefined), '');
  });

  it("acts only on lease IDs under the CofreSecret's own mount and path", () => {
    const source = { type: 'dynamic' as const, mount: 'database', path: 'creds/app' };
    assert.equal(isLeaseOf(source, 'database/creds/app/AbC123'), true);
    // Another role, another mount, a prefix of the name, a traversal: none of them.
    assert.equal(isLeaseOf(source, 'database/creds/app-admin/AbC123'), false);
    assert.equal(isLeaseOf(source, 'database/creds/other/AbC123'), false);
    assert.equal(isLeaseOf(source, 'db2/creds/app/AbC123'), false);
    assert.equal(isLeaseOf(source, 'database/creds/app/../admin/AbC123'), false);
    assert.equal(isLeaseOf(source, 'database/creds/app'), false);
  });

  it('a follow-up keeps the earliest time asked for, and stop() ends every timer', async () => {
    const fired: string[] = [];
    const f = new FollowUps((key) => fired.push(`${key}@${Date.now()}`));
    const t0 = Date.now();
    f.after('ns/a', 60_000);
    f.after('ns/a', 30); // sooner: replaces the later one
    f.after('ns/a', 10_000); // later: ignored
    f.after('ns/b', 10_000);
    f.cancel('ns/b');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(fired.length, 1, fired.join());
    assert.ok(fired[0]!.startsWith('ns/a@'));
    assert.ok(Number(fired[0]!.split('@')[1]) - t0 < 150);
    f.after('ns/c', 50);
    f.stop();
    f.after('ns/d', 10); // after stop: nothing
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(fired.length, 1);
  });

  it('renews a third of the TTL before expiry and replaces two thirds into the whole life', () => {
    const lease = { ttlMs: 6_000, issueTime: 0, expireTime: 6_000, maxExpireTime: 24_000 };
    assert.equal(renewAt(lease), 4_000);
    assert.equal(reissueAt(lease), 16_000);
  });
});
