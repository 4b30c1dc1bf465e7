import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AgentKeys, AgentKeysError } from './keys.js';
import { selectorQuery } from './lifecycle.js';
import { checkDeliveryName, parsePayload, PayloadError } from './payload.js';

describe('cluster agent payload', () => {
  it('accepts the documented shape and fills in an absent rollout', () => {
    const p = parsePayload({
      objects: [
        {
          kind: 'Secret',
          name: 'db',
          type: 'kubernetes.io/basic-auth',
          immutable: true,
          data: { password: 'cGFzcw==' },
        },
        { kind: 'ConfigMap', name: 'app.settings', data: {} },
      ],
    });
    assert.deepEqual(p.rollout, []);
    const inPod = parsePayload({ objects: [{ kind: 'Secret', name: 'env', mode: 'env', data: {} }] });
    assert.equal(inPod.objects[0]!.mode, 'env');
    assert.deepEqual(p.objects[0], {
      kind: 'Secret',
      name: 'db',
      type: 'kubernetes.io/basic-auth',
      immutable: true,
      data: { password: 'cGFzcw==' },
    });
  });

  it('names the wrong field and never echoes a value', () => {
    const cases: [unknown, RegExp][] = [
      [null, /not an object/],
      [{ objects: {} }, /payload\.objects is not a list/],
      [{ objects: [{ kind: 'Pod', name: 'x', data: {} }] }, /objects\[0\]\.kind/],
      [{ objects: [{ kind: 'Secret', name: '../x', data: {} }] }, /objects\[0\]: name/],
      [
        { objects: [{ kind: 'Secret', name: 'x', data: { k: 'SECRET-VALUE' } }] },
        /objects\[0\]\.data\.k is not base64/,
      ],
      [{ objects: [{ kind: 'Secret', name: 'x', data: { 'a/b': 'eA==' } }] }, /a key is not a valid data key/],
      [{ objects: [{ kind: 'Secret', name: 'x', data: { k: 1 } }] }, /data\.k is not base64/],
      [{ objects: [{ kind: 'ConfigMap', name: 'x', type: 'Opaque', data: {} }] }, /type is only/],
      [{ objects: [{ kind: 'Secret', name: 'x', immutable: 'yes', data: {} }] }, /immutable is not a boolean/],
      [
        {
          objects: [
            { kind: 'Secret', name: 'x', data: {} },
            { kind: 'Secret', name: 'x', data: {} },
          ],
        },
        /Secret x appears twice/,
      ],
      [{ objects: [], rollout: [{ kind: 'Job', name: 'x' }] }, /rollout\[0\]\.kind/],
      [
        { objects: [{ kind: 'ConfigMap', name: 'x', mode: 'env', data: {} }] },
        /mode is only "env" or "file", on a Secret/,
      ],
      [{ objects: [{ kind: 'Secret', name: 'x', mode: 'volume', data: {} }] }, /mode is only "env" or "file"/],
    ];
    for (const [value, why] of cases) {
      assert.throws(
        () => parsePayload(value),
        (e: Error) => e instanceof PayloadError && why.test(e.message) && !e.message.includes('SECRET-VALUE'),
        `${JSON.stringify(value)} should fail with ${why}`,
      );
    }
    assert.throws(() => checkDeliveryName('a/b'), PayloadError);
    assert.throws(() => checkDeliveryName('x'.repeat(64)), PayloadError);
    checkDeliveryName('shop-v2.eu_1');
  });

  it('writes label selectors in the query syntax', () => {
    assert.equal(
      selectorQuery({
        matchLabels: { app: 'web', tier: 'front' },
        matchExpressions: [
          { key: 'env', operator: 'In', values: ['a', 'b'] },
          { key: 'canary', operator: 'NotIn', values: ['true'] },
          { key: 'team', operator: 'Exists' },
          { key: 'legacy', operator: 'DoesNotExist' },
        ],
      }),
      'app=web,tier=front,env in (a,b),canary notin (true),team,!legacy',
    );
  });
});

describe('cluster agent keys (in memory)', () => {
  it('derives the public halves, signs, and never shows a private half', async () => {
    const keys = await AgentKeys.generate();
    const data = keys.secretData();
    const again = AgentKeys.fromSecret({ data });
    assert.equal(again.sealingPublicKey, keys.sealingPublicKey);
    assert.equal(again.signingPublicKey, keys.signingPublicKey);
    assert.equal(again.sign('m'), keys.sign('m'), 'Ed25519 signatures are deterministic');
    for (const raw of Object.values(data)) {
      const url = Buffer.from(raw, 'base64').toString('base64url');
      for (const shown of [JSON.stringify(keys), JSON.stringify({ keys }), String(keys)])
        assert.equal(shown.includes(raw) || shown.includes(url), false);
    }
    assert.throws(
      () => AgentKeys.fromSecret({ data: { 'sealing-private-key': data['sealing-private-key']! } }),
      AgentKeysError,
    );
    assert.throws(
      () => AgentKeys.fromSecret({ data: { ...data, 'signing-private-key': Buffer.from('short').toString('base64') } }),
      (e: Error) => e instanceof AgentKeysError && /signing-private-key/.test(e.message),
    );
  });
});
