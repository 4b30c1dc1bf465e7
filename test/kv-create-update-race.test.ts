import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer, writeOk, type InProcessServer } from './support.js';

/**
 * A KV write is authorised as a create or an update by whether the secret exists when the request is checked; the
 * write itself runs later, under the secret's lock. A secret deleted in between must not be created by a token that
 * may only update it, nor one created in between changed by a token that may only create: such a write is refused
 * (403), as it would be a moment later. A token that may do both is never refused by the race.
 */
describe('KV writes racing the deletion or creation of their secret', () => {
  let srv: InProcessServer;
  let updater = '';
  let creator = '';
  let writer = '';

  const call = (method: string, path: string, token: string, body?: unknown) =>
    srv.api.call(method, path, { token, ...(body !== undefined ? { body } : {}) });

  before(async () => {
    srv = await startServer();
    await writeOk(srv.api, 'sys/mounts/kv1race', { type: 'kv', options: { version: '1' } });
    await writeOk(srv.api, 'sys/policies/acl/update-only', {
      policy:
        'path "kv1race/*" { capabilities = ["update"] }\n' +
        'path "secret/data/race/*" { capabilities = ["update"] }\npath "secret/metadata/race/*" { capabilities = ["update"] }',
    });
    await writeOk(srv.api, 'sys/policies/acl/create-update', {
      policy: 'path "secret/data/race/*" { capabilities = ["create", "update", "read"] }',
    });
    await writeOk(srv.api, 'sys/policies/acl/create-only', {
      policy:
        'path "kv1race/*" { capabilities = ["create"] }\n' +
        'path "secret/data/race/*" { capabilities = ["create"] }\npath "secret/metadata/race/*" { capabilities = ["create"] }',
    });
    const token = async (policy: string) =>
      (await srv.api.call('POST', 'auth/token/create', { body: { policies: [policy] } })).body.auth.client_token;
    updater = await token('update-only');
    creator = await token('create-only');
    writer = await token('create-update');
  });
  after(() => srv?.stop());

  it('a token that may create and update is never refused: concurrent first writes all land as versions', async () => {
    for (let round = 0; round < 5; round++) {
      const path = `secret/data/race/both-${round}`;
      const written = await Promise.all(
        Array.from({ length: 10 }, (_, n) => call('PUT', path, writer, { data: { n } })),
      );
      assert.deepEqual(
        written.map((r) => r.status),
        written.map(() => 200),
        written.map((r) => r.text).join('\n'),
      );
      const versions = written.map((r) => r.body.data.version as number).sort((a, b) => a - b);
      assert.deepEqual(versions, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    }
  });

  it('KV version 1: an update-only token never creates a secret that a delete took away meanwhile', async () => {
    const outcomes: Record<number, number> = {};
    for (let i = 0; i < 40; i++) {
      const path = `kv1race/u-${i}`;
      await writeOk(srv.api, path, { n: i });
      const [removed, written] = await Promise.all([
        call('DELETE', path, srv.rootToken),
        call('PUT', path, updater, { by: 'racer' }),
      ]);
      assert.equal(removed.status, 204, removed.text);
      assert.ok([204, 403].includes(written.status), `${written.status} ${written.text}`);
      outcomes[written.status] = (outcomes[written.status] ?? 0) + 1;
      assert.equal((await call('GET', path, srv.rootToken)).status, 404, `${path}: the update-only token created it`);
    }
    assert.ok((outcomes[403] ?? 0) > 0, `no write was refused: ${JSON.stringify(outcomes)}`);
  });

  it('KV version 1: a create-only token never overwrites a secret that another write made meanwhile', async () => {
    const outcomes: Record<number, number> = {};
    for (let i = 0; i < 40; i++) {
      const path = `kv1race/c-${i}`;
      const [made, written] = await Promise.all([
        call('PUT', path, srv.rootToken, { by: 'root' }),
        call('PUT', path, creator, { by: 'racer' }),
      ]);
      assert.equal(made.status, 204, made.text);
      assert.ok([204, 403].includes(written.status), `${written.status} ${written.text}`);
      outcomes[written.status] = (outcomes[written.status] ?? 0) + 1;
      // Had the racer's write come last, it would have overwritten root's secret.
      const stored = await call('GET', path, srv.rootToken);
      assert.equal(stored.body.data.by, 'root', `${path}: the create-only token overwrote it`);
    }
    assert.ok((outcomes[403] ?? 0) > 0, `no write was refused: ${JSON.stringify(outcomes)}`);
  });

  for (const kind of ['data', 'metadata'] as const) {
    const body = kind === 'data' ? { data: { by: 'racer' } } : { max_versions: 3 };

    it(`an update-only token never creates a ${kind} secret that a delete took away meanwhile`, async () => {
      const outcomes: Record<number, number> = {};
      for (let i = 0; i < 40; i++) {
        const path = `race/u-${kind}-${i}`;
        await writeOk(srv.api, `secret/data/${path}`, { data: { n: i } });
        // The delete first: it holds the secret's lock through its commit while the write is checked.
        const [removed, written] = await Promise.all([
          call('DELETE', `secret/metadata/${path}`, srv.rootToken),
          call('PUT', `secret/${kind}/${path}`, updater, body),
        ]);
        assert.equal(removed.status, 204, removed.text);
        outcomes[written.status] = (outcomes[written.status] ?? 0) + 1;
        // Either the write came first (and the delete removed it), or it was refused: the secret is gone.
        const after = await call('GET', `secret/metadata/${path}`, srv.rootToken);
        assert.equal(after.status, 404, `${path}: the update-only token's write (${written.status}) created it`);
        assert.ok([200, 204, 403].includes(written.status), `${written.status} ${written.text}`);
      }
      // The delete, sent first, mostly holds the lock while the write is checked: the race this test is about.
      assert.ok((outcomes[403] ?? 0) > 0, `no write was refused: ${JSON.stringify(outcomes)}`);
    });

    it(`a create-only token never overwrites a ${kind} secret that another write created meanwhile`, async () => {
      const outcomes: Record<number, number> = {};
      // Root's write of the same kind, told apart from the racer's by what it stores.
      const rootBody = kind === 'data' ? { data: { by: 'root' } } : { max_versions: 7 };
      for (let i = 0; i < 40; i++) {
        const path = `race/c-${kind}-${i}`;
        const [made, written] = await Promise.all([
          call('PUT', `secret/${kind}/${path}`, srv.rootToken, rootBody),
          call('PUT', `secret/${kind}/${path}`, creator, body),
        ]);
        assert.ok(made.status === 200 || made.status === 204, made.text);
        outcomes[written.status] = (outcomes[written.status] ?? 0) + 1;
        const meta = (await call('GET', `secret/metadata/${path}`, srv.rootToken)).body.data;
        if (kind === 'data') {
          // The create-only token's version may be the first, never a later one.
          const current = (await call('GET', `secret/data/${path}`, srv.rootToken)).body.data;
          if (current.data.by === 'racer') {
            assert.equal(meta.current_version, 1, `${path}: the create-only token wrote over version 1`);
          }
        } else {
          // Had the racer's settings come last, they would have changed the secret root had made.
          assert.equal(meta.max_versions, 7, `${path}: the create-only token changed an existing secret's settings`);
        }
        assert.ok([200, 204, 403].includes(written.status), `${written.status} ${written.text}`);
      }
      assert.ok((outcomes[403] ?? 0) > 0, `no write was refused: ${JSON.stringify(outcomes)}`);
    });
  }
});
