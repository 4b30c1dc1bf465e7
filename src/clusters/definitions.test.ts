import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDelivery, parsePlacement } from './definitions.js';
import { parseLabels, selects } from './labels.js';

describe('delivery and placement definitions', () => {
  it('labels follow Kubernetes syntax', () => {
    assert.deepEqual(parseLabels({ 'cofre.dev/tier': 'store', region: '' }, 'labels'), {
      'cofre.dev/tier': 'store',
      region: '',
    });
    for (const bad of [{ '-a': 'x' }, { 'a/b/c': 'x' }, { a: '-x' }, { ['k'.repeat(64)]: 'x' }, { a: 1 }]) {
      assert.throws(() => parseLabels(bad, 'labels'), /label/);
    }
  });

  it('a selector matches clusters that carry every one of its labels', () => {
    assert.equal(selects({ region: 'eu' }, { region: 'eu', tier: 'x' }), true);
    assert.equal(selects({ region: 'eu' }, { region: 'us' }), false);
    assert.equal(selects({}, {}), true);
    assert.equal(selects({ constructor: '' }, {}), false);
  });

  it('a delivery refuses unknown modes, literals in secrets, duplicate objects and unknown fields', () => {
    const ok = parseDelivery({
      namespace: 'app',
      items: [
        { name: 'db', mode: 'secret', type: 'Opaque', kv: { mount: '/secret/', path: 'app/db', keys: ['a', 'a'] } },
      ],
    });
    assert.deepEqual(ok.items[0]!.kv, { mount: 'secret', path: 'app/db', keys: ['a'] });
    // Environment variables and in-memory files: secret sources, each its own Secret in the cluster for now.
    const inPod = parseDelivery({
      namespace: 'app',
      items: [
        { name: 'env', mode: 'env', kv: { mount: 'secret', path: 'app/db' } },
        { name: 'files', mode: 'file', immutable: true, kv: { mount: 'secret', path: 'app/tls', keys: ['tls.crt'] } },
      ],
    });
    assert.deepEqual(
      inPod.items.map((i) => i.mode),
      ['env', 'file'],
    );
    const bad: [unknown, RegExp][] = [
      [
        [{ name: 'a', mode: 'volume', kv: { mount: 's', path: 'p' } }],
        /mode must be "secret", "configmap", "env" or "file"/,
      ],
      [[{ name: 'a', mode: 'env', literal: { a: 'b' } }], /literal source is for configmap items only/],
      [[{ name: 'a', mode: 'file', literal: { a: 'b' } }], /literal source is for configmap items only/],
      [[{ name: 'a', mode: 'env', type: 'Opaque', kv: { mount: 's', path: 'p' } }], /type .*secret items only/],
      [
        [
          { name: 'a', mode: 'secret', kv: { mount: 's', path: 'p' } },
          { name: 'a', mode: 'env', kv: { mount: 's', path: 'q' } },
        ],
        /two items name the same Secret "a"/,
      ],
      [[{ name: 'a', mode: 'secret', literal: { a: 'b' } }], /literal source is for configmap/],
      [[{ name: 'a', mode: 'configmap', type: 'x', literal: { a: 'b' } }], /type/],
      [[{ name: 'a', mode: 'configmap', literal: { a: 'b' }, extra: 1 }], /unknown fields/],
      [[{ name: 'a', mode: 'configmap', literal: { 'a b': 'b' } }], /invalid data key/],
      [
        [
          { name: 'a', mode: 'configmap', literal: { a: 'b' } },
          { name: 'a', mode: 'configmap', literal: { c: 'd' } },
        ],
        /same ConfigMap/,
      ],
    ];
    for (const [items, message] of bad) assert.throws(() => parseDelivery({ namespace: 'app', items }), message);
    assert.throws(() => parseDelivery({ namespace: 'App', items: ok.items }), /namespace/);
    assert.throws(
      () => parseDelivery({ namespace: 'app', items: ok.items, rollout: [{ kind: 'Pod', name: 'x' }] }),
      /rollout/,
    );
  });

  it('a database source: secret items only, credential fields as keys, a bounded grace period', () => {
    const ok = parseDelivery({
      namespace: 'app',
      items: [{ name: 'db', mode: 'secret', database: { mount: '/database/', role: 'app', keys: ['password'] } }],
      grace_period: 600,
    });
    assert.deepEqual(ok.items[0]!.database, { mount: 'database', role: 'app', keys: ['password'] });
    assert.equal(ok.gracePeriod, 600);
    assert.equal(parseDelivery({ namespace: 'app', items: ok.items }).gracePeriod, undefined);
    const bad: [unknown, RegExp][] = [
      [{ name: 'a', mode: 'configmap', database: { mount: 'd', role: 'r' } }, /secret items only/],
      [{ name: 'a', mode: 'secret', database: { mount: 'd', role: 'r/x' } }, /role name without "\/"/],
      [{ name: 'a', mode: 'secret', database: { mount: '/', role: 'r' } }, /non-empty mount/],
      [{ name: 'a', mode: 'secret', database: { mount: 'd', role: 'r', keys: [] } }, /non-empty list/],
      [{ name: 'a', mode: 'secret', database: { mount: 'd', role: 'r', keys: ['url'] } }, /not a credential field/],
      [{ name: 'a', mode: 'secret', database: { mount: 'd', role: 'r', path: 'x' } }, /unknown fields/],
      [{ name: 'a', mode: 'secret', database: 'database/creds/r' }, /\{mount, role, keys\?\}/],
      [{ name: 'a', mode: 'secret', database: { mount: 'd', role: 'r' }, literal: { a: 'b' } }, /exactly one/],
    ];
    for (const [item, message] of bad) {
      assert.throws(() => parseDelivery({ namespace: 'app', items: [item] }), message);
    }
    for (const grace of [-1, 1.5, 8 * 24 * 3600, '1h']) {
      assert.throws(() => parseDelivery({ namespace: 'app', items: ok.items, grace_period: grace }), /grace_period/);
    }
  });

  it('a placement needs a selector or cluster names', () => {
    assert.throws(() => parsePlacement({ delivery: 'd' }), /selector/);
    assert.deepEqual(parsePlacement({ delivery: 'd', clusters: ['b', 'a', 'a'] }).clusters, ['a', 'b']);
    assert.throws(() => parsePlacement({ delivery: 'd', selector: { matchExpressions: [] } }), /matchLabels/);
  });
});
