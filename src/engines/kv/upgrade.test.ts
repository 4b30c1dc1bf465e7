import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CofreError } from '../../core/errors.js';
import { kvFactory } from './index.js';
import { Harness, kvSystemView, openKv } from './test-harness.js';
import { ServiceGate, UPGRADING_MESSAGE, v1ToV2Ops } from './upgrade.js';

describe('kv upgrade: the service gate', () => {
  it('closing waits for the requests inside, and refuses new ones with Vault’s retryable 400', async () => {
    const gate = new ServiceGate();
    let finish!: () => void;
    const inside = gate.run(() => new Promise<string>((resolve) => (finish = () => resolve('done'))));
    let closed = false;
    const closing = gate.close().then(() => (closed = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(closed, false, 'close must wait for the request inside');
    await assert.rejects(
      gate.run(async () => 'late'),
      (err: unknown) => err instanceof CofreError && err.status === 400 && err.message === UPGRADING_MESSAGE,
    );
    finish();
    assert.equal(await inside, 'done');
    await closing;
    assert.equal(closed, true);
    gate.open();
    assert.equal(await gate.run(async () => 'again'), 'again');
  });

  it('a failing request still leaves the gate', async () => {
    const gate = new ServiceGate();
    await assert.rejects(gate.run(() => Promise.reject(new Error('boom'))));
    await gate.close(); // resolves at once: nothing is inside
  });
});

describe('kv upgrade: version 1 data to version 2', () => {
  it('puts every old key away before writing a new one (names may collide with the v2 layout)', () => {
    const ops = v1ToV2Ops(
      new Map([
        ['app', { a: 1 }],
        ['metadata/app', { b: 2 }],
      ]),
      '2026-01-01T00:00:00.000Z',
    );
    const firstPut = ops.findIndex((op) => op.op === 'put');
    assert.deepEqual(
      ops.slice(0, firstPut).map((op) => op.key),
      ['app', 'metadata/app'],
    );
    assert.ok(ops.slice(firstPut).every((op) => op.op === 'put'));
    assert.ok(ops.some((op) => op.key === 'metadata/metadata/app'));
  });

  it('the version 1 backend stops serving, hands over its data, and serves again if the upgrade is cancelled', async () => {
    const { kv, storage, close } = await openKv('1');
    try {
      const secrets: Record<string, Record<string, unknown>> = {
        config: { max_versions: 'not a config' },
        'metadata/app': { user: 'm' },
        app: { user: 'a', nested: { deep: [1, 'ü'] } },
        'versions/app/1': { v: 'x' },
        'a/b/c': { c: 'd' },
      };
      for (const [path, body] of Object.entries(secrets))
        assert.equal((await kv.call('write', path, { body })).status, 204);

      const upgrade = await kv.backend.prepareUpgrade!({ version: '2' });
      assert.ok(upgrade);
      const refused = await kv.call('read', 'app');
      assert.equal(refused.status, 400);
      assert.deepEqual(refused.errors, [UPGRADING_MESSAGE]);
      upgrade.cancel();
      assert.equal((await kv.call('read', 'app')).status, 200);
      assert.equal(await kv.backend.prepareUpgrade!({ other: 'x' }), undefined, 'only a version change converts');

      const again = (await kv.backend.prepareUpgrade!({ version: '2' }))!;
      await storage.transaction(again.ops);
      const v2 = new Harness(
        await kvFactory({ storage, mountPoint: 'secret/', options: { version: '2' }, system: kvSystemView }),
        storage,
      );
      for (const [path, data] of Object.entries(secrets)) {
        const read = await v2.call('read', `data/${path}`);
        assert.equal(read.status, 200, path);
        assert.deepEqual(read.data?.data, data, path);
        assert.equal((read.data?.metadata as { version: number }).version, 1);
      }
      // The secret named "config" did not become the mount's config.
      const config = await v2.call('read', 'config');
      assert.equal(config.data?.max_versions, 0);
      assert.deepEqual((await v2.call('list', 'metadata/')).data?.keys, [
        'a/',
        'app',
        'config',
        'metadata/',
        'versions/',
      ]);
    } finally {
      await close();
    }
  });
});
