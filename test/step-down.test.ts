import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startPostgres, type TestDatabase } from '../scripts/test-databases.js';
import { createCofre, type Cofre } from '../src/app.js';
import { apiClient, runCli, startServer, until, writeOk, type Api, type InProcessServer } from './support.js';

describe('sys/step-down on a single node', () => {
  let srv: InProcessServer;
  before(async () => {
    srv = await startServer({ shares: 1, threshold: 1 });
  });
  after(() => srv?.stop());

  /** A token with the given policy body, made by root. */
  async function tokenWith(name: string, policy: string): Promise<string> {
    await writeOk(srv.api, `sys/policies/acl/${name}`, { policy });
    const res = await srv.api.call('POST', 'auth/token/create', { body: { policies: [name] } });
    assert.equal(res.status, 200, res.text);
    return res.body.auth.client_token;
  }

  it('is a no-op success for root, as Vault on a lone node: the node keeps running the background jobs', async () => {
    const res = await srv.api.call('PUT', 'sys/step-down');
    assert.equal(res.status, 204, res.text);
    assert.equal((await srv.cofre.core.haStatus()).leader, true);
    // It still serves and its jobs still run: a token with a 1 s TTL is revoked by the expiration manager.
    const short = await srv.api.call('POST', 'auth/token/create', { body: { ttl: '1s', policies: ['default'] } });
    const token = short.body.auth.client_token as string;
    await until(
      'the short token expires',
      async () => ((await srv.api.call('GET', 'auth/token/lookup-self', { token })).status === 403 ? true : undefined),
      10_000,
    );
  });

  it('a limited token cannot step down: no token, default policy, update without sudo', async () => {
    const none = await srv.api.call('PUT', 'sys/step-down', { token: '' });
    assert.equal(none.status, 403, none.text);
    const defaultOnly = await tokenWith('nothing', 'path "secret/*" { capabilities = ["read"] }');
    assert.equal((await srv.api.call('PUT', 'sys/step-down', { token: defaultOnly })).status, 403);
    const noSudo = await tokenWith('no-sudo', 'path "sys/step-down" { capabilities = ["update", "create"] }');
    const refused = await srv.api.call('PUT', 'sys/step-down', { token: noSudo });
    assert.equal(refused.status, 403, refused.text);
    const denied = await tokenWith(
      'denied',
      'path "sys/*" { capabilities = ["deny"] }\npath "sys/step-down" { capabilities = ["update", "sudo"] }',
    );
    // A more specific path wins in Vault's rules: this token may step down; a glob-only sudo token may not below.
    assert.equal((await srv.api.call('PUT', 'sys/step-down', { token: denied })).status, 204);
    const globDeny = await tokenWith(
      'glob-deny',
      'path "sys/step-*" { capabilities = ["deny"] }\npath "sys/*" { capabilities = ["update", "sudo"] }',
    );
    assert.equal((await srv.api.call('PUT', 'sys/step-down', { token: globDeny })).status, 403);
    const sudo = await tokenWith('step-down', 'path "sys/step-down" { capabilities = ["update", "sudo"] }');
    assert.equal((await srv.api.call('PUT', 'sys/step-down', { token: sudo })).status, 204);
    // Only PUT/POST: a read is not an operation of this path.
    assert.equal((await srv.api.call('GET', 'sys/step-down')).status, 405);
  });

  it('the CLI steps down with a sudo token and fails with a limited one', async () => {
    const ok = await runCli(srv.url, srv.rootToken, 'operator', 'step-down');
    assert.equal(ok.code, 0, ok.out);
    assert.equal(ok.out.trim(), `Success! Stepped down: ${srv.url}`);
    const limited = await tokenWith('cli-limited', 'path "sys/step-down" { capabilities = ["update"] }');
    const refused = await runCli(srv.url, limited, 'operator', 'step-down');
    assert.equal(refused.code, 1, refused.out);
    assert.match(refused.out, /permission denied/);
  });
});

/** Two nodes on one PostgreSQL store, in this process: the leader steps down and the other one takes over. */
describe('sys/step-down in a cluster', () => {
  let db: TestDatabase;
  const nodes: { cofre: Cofre; api: Api; name: string }[] = [];
  let root = '';

  before(async () => {
    db = await startPostgres();
    for (const name of ['a', 'b']) {
      const cofre = await createCofre({
        storage: { type: 'postgresql', connectionUrl: db.url, table: 'cofre_step_down' },
        apiAddr: `http://node-${name}:8200`,
        logLevel: 'error',
      });
      await cofre.http.listen({ host: '127.0.0.1', port: 0 });
      const address = cofre.http.server.address();
      nodes.push({
        cofre,
        name,
        api: apiClient(`http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`),
      });
    }
    const init = await nodes[0]!.api.call('PUT', 'sys/init', { body: { secret_shares: 1, secret_threshold: 1 } });
    assert.equal(init.status, 200, init.text);
    root = init.body.root_token;
    for (const node of nodes) {
      const res = await node.api.call('PUT', 'sys/unseal', { body: { key: init.body.keys[0] } });
      assert.equal(res.body.sealed, false, res.text);
      node.api = apiClient(node.api.url, root);
    }
  });
  after(async () => {
    for (const node of nodes) await node.cofre.close();
    await db?.stop();
  });

  const leader = async (): Promise<string | undefined> => {
    for (const node of nodes) if ((await node.cofre.core.haStatus()).leader) return node.name;
    return undefined;
  };

  it('the leader gives the background jobs up, another node takes them, and it campaigns again after a pause', async () => {
    const first = await until('a node leads', leader, 20_000);
    const stepping = nodes.find((n) => n.name === first)!;
    const other = nodes.find((n) => n.name !== first)!;
    const res = await stepping.api.call('PUT', 'sys/step-down');
    assert.equal(res.status, 204, res.text);
    assert.equal((await stepping.cofre.core.haStatus()).leader, false, 'it stops leading at once');
    await until('the other node leads', async () => ((await leader()) === other.name ? true : undefined), 20_000);
    // Both still serve.
    for (const node of nodes) assert.equal((await node.api.call('GET', 'auth/token/lookup-self')).status, 200);
    const view = await stepping.api.call('GET', 'sys/leader');
    assert.equal(view.body.is_self, false);

    // The other node steps down in turn: the first one, back in the election after its pause, leads again.
    assert.equal((await other.api.call('PUT', 'sys/step-down')).status, 204);
    await until('the first node leads again', async () => ((await leader()) === first ? true : undefined), 30_000);
  });
});
