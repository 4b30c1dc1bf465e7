import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startPostgres, type TestDatabase } from '../scripts/test-databases.js';
import { createCofre, type Cofre } from '../src/app.js';
import { type Api, apiClient, until } from './support.js';

const NODE_USER = 'cofre_node';
const NODE_PASSWORD = 'node-pw-2b9e41';

/**
 * A node on a PostgreSQL store whose leader lock cannot be reached when it unseals: PostgreSQL refuses the lock's
 * connection (the role's CONNECTION LIMIT is reached by the node's pool and LISTEN connections). As Vault's
 * standbys, the node is unsealed and serves, does not lead, says why, and keeps trying until it leads.
 */
describe('a node whose leader campaign fails when it unseals', () => {
  let db: TestDatabase;
  let cofre: Cofre;
  let api: Api;
  let key = '';
  let root = '';

  before(async () => {
    db = await startPostgres();
    await db.query(`CREATE ROLE ${NODE_USER} WITH LOGIN PASSWORD '${NODE_PASSWORD}'`);
    await db.query(`GRANT CREATE ON SCHEMA public TO ${NODE_USER}`);
    const connectionUrl = `postgresql://${NODE_USER}:${NODE_PASSWORD}@${db.host}:${db.port}/postgres`;
    // One pooled connection at most, so that the node holds exactly two: the pool's and the LISTEN one.
    cofre = await createCofre({
      storage: { type: 'postgresql', connectionUrl, table: 'cofre_campaign', maxConnections: 1 },
      apiAddr: 'http://campaign-node:8200',
      logLevel: 'error',
    });
    await cofre.http.listen({ host: '127.0.0.1', port: 0 });
    const address = cofre.http.server.address();
    api = apiClient(`http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`);
  });
  after(async () => {
    await cofre?.close();
    await db?.stop();
  });

  it('stays unsealed as a standby, shows why it does not lead, and leads once the lock can be reached', async () => {
    const init = await api.call('PUT', 'sys/init', { body: { secret_shares: 1, secret_threshold: 1 } });
    assert.equal(init.status, 200, init.text);
    key = init.body.keys[0] as string;
    root = init.body.root_token as string;

    await db.query(`ALTER ROLE ${NODE_USER} CONNECTION LIMIT 2`);
    const unsealed = await api.call('PUT', 'sys/unseal', { body: { key } });
    assert.equal(unsealed.status, 200, unsealed.text);
    assert.equal(unsealed.body.sealed, false);

    const standby = await cofre.core.haStatus();
    assert.equal(standby.leader, false);
    assert.match(standby.campaignError, /too many connections/);
    assert.equal((await api.call('GET', 'sys/leader')).body.is_self, false);
    // A standby serves requests all the same.
    const token = await api.call('GET', 'auth/token/lookup-self', { token: root });
    assert.equal(token.status, 200, token.text);

    await db.query(`ALTER ROLE ${NODE_USER} CONNECTION LIMIT -1`);
    await until(
      'the node leads',
      async () => ((await api.call('GET', 'sys/leader')).body.is_self === true ? true : undefined),
      20_000,
    );
    assert.equal((await cofre.core.haStatus()).campaignError, '');
  });

  it('a node whose mount table cannot be loaded after the barrier unsealed is sealed again, with the error', async () => {
    assert.equal((await api.call('PUT', 'sys/seal', { token: root })).status, 204);
    // Row-level security hides the mount table from the node and refuses to let it write one.
    await db.query('ALTER TABLE cofre_campaign ENABLE ROW LEVEL SECURITY');
    await db.query('ALTER TABLE cofre_campaign FORCE ROW LEVEL SECURITY');
    await db.query(
      `CREATE POLICY hide_mounts ON cofre_campaign USING (key <> 'core/mounts') WITH CHECK (key <> 'core/mounts')`,
    );
    const failed = await api.call('PUT', 'sys/unseal', { body: { key } });
    assert.ok(failed.status >= 500, failed.text);
    assert.equal((await api.call('GET', 'sys/seal-status')).body.sealed, true);
    assert.equal((await api.call('GET', 'auth/token/lookup-self', { token: root })).status, 503);

    await db.query('DROP POLICY hide_mounts ON cofre_campaign');
    await db.query('ALTER TABLE cofre_campaign DISABLE ROW LEVEL SECURITY');
    const unsealed = await api.call('PUT', 'sys/unseal', { body: { key } });
    assert.equal(unsealed.status, 200, unsealed.text);
    assert.equal(unsealed.body.sealed, false);
    assert.equal((await api.call('GET', 'auth/token/lookup-self', { token: root })).status, 200);
  });
});
