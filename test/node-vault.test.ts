import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import nodeVault from 'node-vault';
import { startServer, type InProcessServer } from './support.js';

/** Compatibility with a Vault client we did not write: the npm package node-vault, with its default LIST verb. */
describe('node-vault drives Cofre', () => {
  let srv: InProcessServer;
  before(async () => {
    srv = await startServer({ initialised: false });
  });
  after(() => srv.stop());

  it('init, unseal, KV v2, policy and token lifecycle', async () => {
    const vault = nodeVault({ apiVersion: 'v1', endpoint: srv.url });
    assert.equal((await vault.initialized()).initialized, false);
    const init = await vault.init({ secret_shares: 3, secret_threshold: 2 });
    assert.equal(init.keys.length, 3);
    vault.token = init.root_token;
    await vault.unseal({ secret_shares: 1, key: init.keys[0] });
    const unsealed = await vault.unseal({ secret_shares: 1, key: init.keys[1] });
    assert.equal(unsealed.sealed, false);
    assert.equal((await vault.status()).sealed, false);

    const written = await vault.write('secret/data/app/db', { data: { username: 'app', password: 'pw-1' } });
    assert.equal(written.data.version, 1);
    await vault.write('secret/data/app/db', { data: { username: 'app', password: 'pw-2' } });
    await vault.write('secret/data/app/api', { data: { key: 'k' } });
    const read = await vault.read('secret/data/app/db');
    assert.equal(read.data.data.password, 'pw-2');
    assert.equal(read.data.metadata.version, 2);
    const listed = await vault.list('secret/metadata/app');
    assert.deepEqual(listed.data.keys.sort(), ['api', 'db']);
    await vault.delete('secret/data/app/api');
    await assert.rejects(
      vault.read('secret/data/app/api'),
      (err: { response?: { statusCode: number } }) => err.response?.statusCode === 404,
    );

    await vault.addPolicy({ name: 'app-read', rules: 'path "secret/data/app/*" {\n  capabilities = ["read"]\n}\n' });
    const policy = await vault.getPolicy({ name: 'app-read' });
    assert.match(policy.rules, /secret\/data\/app/);
    const created = await vault.tokenCreate({ policies: ['app-read'], ttl: '1h' });
    const childToken = created.auth.client_token as string;
    // node-vault switches its client to a token it has just created; switch back to root.
    assert.equal(vault.token, childToken);
    vault.token = init.root_token;
    assert.deepEqual(created.auth.policies, ['app-read', 'default']);
    const looked = await vault.tokenLookup({ token: childToken });
    assert.equal(looked.data.ttl > 3500 && looked.data.ttl <= 3600, true);

    const child = nodeVault({ apiVersion: 'v1', endpoint: srv.url, token: childToken });
    assert.equal((await child.read('secret/data/app/db')).data.data.password, 'pw-2');
    await assert.rejects(
      child.write('secret/data/app/db', { data: { x: 1 } }),
      (err: { response?: { statusCode: number } }) => err.response?.statusCode === 403,
    );

    await vault.tokenRevoke({ token: childToken });
    await assert.rejects(
      child.read('secret/data/app/db'),
      (err: { response?: { statusCode: number } }) => err.response?.statusCode === 403,
    );
  });
});
