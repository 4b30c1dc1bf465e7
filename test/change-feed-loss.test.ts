import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { startPostgres, type TestDatabase } from '../scripts/test-databases.js';
import { createCofre, type Cofre } from '../src/app.js';
import type { SharedStorage } from '../src/core/storage.js';
import { initAndUnseal, injectJson, until } from './support.js';

/**
 * A TCP relay between a node and PostgreSQL that can go silent for the LISTEN connections open at that moment, as a
 * firewall dropping an idle connection does: nothing is closed, nothing more arrives either way. It tells those
 * connections by their startup message, which names the application (`cofre listen <node>`).
 */
class SilencingRelay {
  private readonly links: { listens: boolean; silent: boolean }[] = [];
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  port = 0;

  async start(target: { host: string; port: number }): Promise<void> {
    this.server = createServer((client) => {
      const link = { listens: false, silent: false, seen: false };
      this.links.push(link);
      const upstream = connect(target.port, target.host);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('error', () => undefined);
        socket.on('close', () => {
          this.sockets.delete(socket);
          this.links.splice(this.links.indexOf(link) >>> 0, this.links.includes(link) ? 1 : 0);
          client.destroy();
          upstream.destroy();
        });
      }
      client.on('data', (chunk: Buffer) => {
        if (!link.seen) link.listens = chunk.includes('cofre listen');
        link.seen = true;
        if (!link.silent) upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => {
        if (!link.silent) client.write(chunk);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  /** The LISTEN connections open now drop everything from here on; connections made later work. */
  silenceListens(): number {
    const listening = this.links.filter((link) => link.listens && !link.silent);
    for (const link of listening) link.silent = true;
    return listening.length;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/**
 * Two nodes on one PostgreSQL store, in this process. Each hears the other's changes on a LISTEN connection of its
 * own. The second node connects as a role of its own, so that the test can cut that connection and keep it from
 * coming back (the role may not log in) while the node's pooled connections go on working. Before, a node whose
 * LISTEN connection was down went on answering from its caches: a token revoked on the other node meanwhile was
 * still accepted, until a new connection listened.
 */
describe('a node that has lost the connection it hears other nodes on', () => {
  let db: TestDatabase;
  const nodes: Cofre[] = [];
  let root = '';
  let unsealKey = '';
  const table = 'feed_loss';
  const relay = new SilencingRelay();

  const inject = (node: Cofre, method: 'GET' | 'POST', url: string, token: string, payload?: unknown) =>
    injectJson(node, method, url, { token, payload });

  /** Cuts the second node's LISTEN connection, and keeps it from making a new one until `restore`. */
  const deafen = async (): Promise<{ restore: () => Promise<void> }> => {
    await db.query('ALTER ROLE cofre_second NOLOGIN');
    const cut = await db.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'cofre_second' AND application_name LIKE 'cofre listen%'",
    );
    assert.equal(cut.length, 1, 'the second node listens on one connection');
    const store = nodes[1]!.storage as unknown as SharedStorage;
    await until('the second node notices', async () => (store.deaf?.() ? true : undefined), 10_000);
    return { restore: async () => void (await db.query('ALTER ROLE cofre_second LOGIN')) };
  };

  before(async () => {
    db = await startPostgres();
    await db.query("CREATE ROLE cofre_second LOGIN SUPERUSER PASSWORD 'second-node'");
    // The second node reaches PostgreSQL through the relay.
    await relay.start({ host: db.host, port: db.port });
    const second = new URL(db.url);
    second.username = 'cofre_second';
    second.password = 'second-node';
    second.hostname = '127.0.0.1';
    second.port = String(relay.port);
    for (const connectionUrl of [db.url, second.toString()]) {
      nodes.push(await createCofre({ storage: { type: 'postgresql', connectionUrl, table }, logLevel: 'error' }));
    }
    ({ rootToken: root, key: unsealKey } = await initAndUnseal(nodes));
  });

  after(async () => {
    await db?.query('ALTER ROLE cofre_second LOGIN').catch(() => undefined);
    for (const node of nodes) await node.close().catch(() => undefined);
    await relay.stop();
    await db?.stop();
  });

  /** A token made on the first node, and used on the second, which then has it cached. */
  const tokenKnownToBoth = async (policies = ['default']): Promise<string> => {
    const made = await inject(nodes[0]!, 'POST', 'auth/token/create', root, { policies });
    assert.equal(made.status, 200);
    const token = (made.body.auth as { client_token: string }).client_token;
    // A lookup caches the token only if no change was announced while it read, so once the creation's
    // notifications have all arrived.
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal((await inject(nodes[1]!, 'GET', 'auth/token/lookup-self', token)).status, 200);
    return token;
  };

  it('holds requests until it hears again, and then refuses a token revoked meanwhile', async () => {
    const [first, second] = nodes as [Cofre, Cofre];
    const token = await tokenKnownToBoth();
    // Its pooled connections, opened now, keep working while its role may not log in.
    await Promise.all(Array.from({ length: 8 }, () => inject(second, 'GET', 'sys/mounts', root)));
    const { restore } = await deafen();
    // Its health check does not take it out of a load balancer's rotation for a reconnection's blip.
    assert.equal((await inject(second, 'GET', 'sys/health', '')).status, 200);
    assert.equal((await inject(first, 'POST', 'auth/token/revoke', root, { token })).status, 204);

    let answered = false;
    const probe = inject(second, 'GET', 'auth/token/lookup-self', token).finally(() => (answered = true));
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(answered, false, 'the node answered while it could not hear of the revocation');
    await restore();
    const res = await probe;
    assert.equal(res.status, 403, `the revoked token was accepted: ${JSON.stringify(res.body)}`);
  });

  it('notices within seconds a LISTEN connection the network silently dropped, and refuses what it missed', async () => {
    const [first, second] = nodes as [Cofre, Cofre];
    const token = await tokenKnownToBoth();
    assert.equal(relay.silenceListens(), 1, 'the second node listens on one connection');
    const silenced = Date.now();
    assert.equal((await inject(first, 'POST', 'auth/token/revoke', root, { token })).status, 204);
    // It cannot hear the revocation; its ping finds the connection dead, a new one listens, and its caches go.
    const refusedAfter = await until(
      'the second node refuses the revoked token',
      async () => {
        const res = await inject(second, 'GET', 'auth/token/lookup-self', token);
        return res.status === 403 ? Date.now() - silenced : undefined;
      },
      20_000,
    );
    assert.ok(refusedAfter < 4500, `the revoked token was accepted for ${refusedAfter} ms`);
  });

  it('refuses requests once it has been deaf too long, and serves again once it hears', async () => {
    const [first, second] = nodes as [Cofre, Cofre];
    const token = await tokenKnownToBoth();
    // A token that may seal, known to the second node, revoked on the first once the second cannot hear it.
    const policy = { policy: 'path "sys/seal" { capabilities = ["update", "sudo"] }' };
    assert.equal((await inject(first, 'POST', 'sys/policies/acl/sealer', root, policy)).status, 204);
    const sealer = await tokenKnownToBoth(['default', 'sealer']);
    await Promise.all(Array.from({ length: 8 }, () => inject(second, 'GET', 'sys/mounts', root)));
    const { restore } = await deafen();
    assert.equal((await inject(first, 'POST', 'auth/token/revoke', root, { token: sealer })).status, 204);
    try {
      const started = Date.now();
      const racing = await Promise.all(
        Array.from({ length: 20 }, () => inject(second, 'GET', 'auth/token/lookup-self', token)),
      );
      assert.deepEqual(new Set(racing.map((r) => r.status)), new Set([503]));
      assert.match(JSON.stringify(racing[0]!.body), /lost its connection for other nodes' changes/);
      assert.ok(Date.now() - started >= 4000, 'the requests were held before they were refused');
      // Refused at once from then on, while it still cannot hear.
      const late = Date.now();
      assert.equal((await inject(second, 'GET', 'auth/token/lookup-self', token)).status, 503);
      assert.ok(Date.now() - late < 1000);
      // Its health check says so, for a load balancer to send requests elsewhere.
      const health = await inject(second, 'GET', 'sys/health', '');
      assert.equal(health.status, 503);
      assert.match(String(health.body.refusing_requests), /lost its connection for other nodes' changes/);
      // An operator can still seal it, but not with a token revoked on the other node while this one was deaf.
      assert.equal((await inject(second, 'POST', 'sys/seal', sealer)).status, 403);
      const sealed = await second.http.inject({
        method: 'PUT',
        url: '/v1/sys/seal',
        headers: { 'x-vault-token': root },
      });
      assert.equal(sealed.statusCode, 204, sealed.body);
    } finally {
      await restore();
    }
    const unsealed = await second.http.inject({ method: 'PUT', url: '/v1/sys/unseal', payload: { key: unsealKey } });
    assert.equal(unsealed.statusCode, 200);
    const store = second.storage as unknown as SharedStorage;
    await until('the second node hears again', async () => (store.deaf?.() ? undefined : true), 15_000);
    assert.equal((await inject(second, 'GET', 'auth/token/lookup-self', token)).status, 200);
    assert.equal((await inject(second, 'GET', 'sys/health', '')).status, 200);
  });

  it('as the leader, does not revoke at its old end a lease renewed on another node while it could not hear', async () => {
    const [first, second] = nodes as [Cofre, Cofre];
    const put = async (node: Cofre, url: string, payload: unknown) => {
      const res = await injectJson(node, 'PUT', url, { token: root, payload });
      assert.ok(res.status < 300, `${url}: ${res.status} ${JSON.stringify(res.body)}`);
      return res;
    };
    const leads = async (node: Cofre) =>
      (await inject(node, 'GET', 'sys/leader', root)).body.is_self === true ? true : undefined;
    // The second node leads (it runs lease expiry): the first hands over by sealing, and comes back.
    if (!(await leads(second))) {
      await put(first, 'sys/seal', {});
      await until('the second node leads', () => leads(second), 15_000);
      await put(first, 'sys/unseal', { key: unsealKey });
    }
    await put(first, 'sys/mounts/dbfeed', { type: 'database' });
    await put(first, 'dbfeed/config/pg', {
      plugin_name: 'postgresql-database-plugin',
      connection_url: `postgresql://{{username}}:{{password}}@${db.host}:${db.port}/postgres`,
      username: db.user,
      password: db.password,
      allowed_roles: '*',
    });
    await put(first, 'dbfeed/roles/short', {
      db_name: 'pg',
      creation_statements: [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`],
      default_ttl: 6,
      max_ttl: 600,
    });
    const creds = await inject(first, 'GET', 'dbfeed/creds/short', root);
    assert.equal(creds.status, 200, JSON.stringify(creds.body));
    const leaseId = creds.body.lease_id as string;
    const username = (creds.body.data as { username: string }).username;
    const endsAt = Date.now() + 6000;
    // The leader has read the lease (and armed its timer for the end it had then).
    await until(
      'the leader knows the lease',
      async () =>
        (await injectJson(second, 'PUT', 'sys/leases/lookup', { token: root, payload: { lease_id: leaseId } }))
          .status === 200
          ? true
          : undefined,
      3000,
    );
    await Promise.all(Array.from({ length: 8 }, () => inject(second, 'GET', 'sys/mounts', root)));
    const { restore } = await deafen();
    try {
      const renewed = await put(first, 'sys/leases/renew', { lease_id: leaseId, increment: 300 });
      assert.ok((renewed.body.lease_duration as number) > 200);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, endsAt - Date.now()) + 2000));
      const role = await db.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [username]);
      assert.equal(role.length, 1, 'the leader revoked, at its old end, a lease renewed on the other node');
    } finally {
      await restore();
    }
    const store = second.storage as unknown as SharedStorage;
    await until('the second node hears again', async () => (store.deaf?.() ? undefined : true), 15_000);
    const looked = await injectJson(second, 'PUT', 'sys/leases/lookup', {
      token: root,
      payload: { lease_id: leaseId },
    });
    assert.equal(looked.status, 200, JSON.stringify(looked.body));
    assert.ok((looked.body.data as { ttl: number }).ttl > 200);
    await put(first, 'sys/leases/revoke', { lease_id: leaseId });
    assert.equal((await db.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [username])).length, 0);
  });

  it('closed while it cannot hear, does not log that it serves requests again', async () => {
    // Before, closing ended the wait for a new LISTEN connection, and the node logged that it served again.
    await db.query("CREATE ROLE cofre_third LOGIN SUPERUSER PASSWORD 'third-node'");
    const url = new URL(db.url);
    url.username = 'cofre_third';
    url.password = 'third-node';
    const lines: string[] = [];
    const logStream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    const third = await createCofre({
      storage: { type: 'postgresql', connectionUrl: url.toString(), table },
      logLevel: 'info',
      logStream,
    });
    try {
      const unsealed = await third.http.inject({ method: 'PUT', url: '/v1/sys/unseal', payload: { key: unsealKey } });
      assert.equal(unsealed.statusCode, 200, unsealed.body);
      await db.query('ALTER ROLE cofre_third NOLOGIN');
      await db.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'cofre_third' AND application_name LIKE 'cofre listen%'",
      );
      const store = third.storage as unknown as SharedStorage;
      await until('the third node notices', async () => (store.deaf?.() ? true : undefined), 10_000);
      // A request starts the hold (and its log lines), as on a serving node.
      void injectJson(third, 'GET', 'sys/mounts', { token: root }).catch(() => undefined);
      await until(
        'it logs that it holds requests',
        async () => (lines.some((l) => /holding requests/.test(l)) ? true : undefined),
        5000,
      );
    } finally {
      await third.close();
      await db.query('ALTER ROLE cofre_third LOGIN');
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(!lines.some((line) => /again: serving requests/.test(line)), lines.join(''));
  });
});
