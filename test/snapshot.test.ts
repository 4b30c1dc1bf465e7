/**
 * Snapshots and migration end to end: real servers on real SQLite files, snapshots over HTTP while writers keep
 * writing, restores into other servers unsealed with the original keys, and the CLI (run in-process, as
 * src/cli/commands.test.ts does) for `operator snapshot save|restore` and `operator migrate`.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Command } from 'commander';
import { stdio, type Streams } from '../src/cli/output.js';
import { buildProgram, run } from '../src/cli/program.js';
import { startPostgres } from '../scripts/test-databases.js';
import { startNode, unseal, type Node } from './cluster-support.js';
import { apiClient, startServer, tempDir, until, type InProcessServer } from './support.js';

const dirs: string[] = [];
const servers: InProcessServer[] = [];

after(async () => {
  for (const srv of servers) await srv.stop().catch(() => {});
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function server(opts: Parameters<typeof startServer>[0] = {}): Promise<InProcessServer> {
  const srv = await startServer(opts);
  servers.push(srv);
  return srv;
}

async function getSnapshot(srv: InProcessServer): Promise<Buffer> {
  const res = await fetch(`${srv.url}/v1/sys/storage/snapshot`, { headers: { 'x-vault-token': srv.rootToken } });
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal(res.headers.get('content-type'), 'application/octet-stream');
  return Buffer.from(await res.arrayBuffer());
}

async function postSnapshot(
  srv: InProcessServer,
  bytes: Buffer,
  force: boolean,
  token = srv.rootToken,
): Promise<{ status: number; text: string }> {
  const res = await fetch(`${srv.url}/v1/sys/storage/snapshot${force ? '-force' : ''}`, {
    method: 'POST',
    headers: { 'x-vault-token': token, 'content-type': 'application/octet-stream' },
    body: new Uint8Array(bytes),
  });
  return { status: res.status, text: await res.text() };
}

async function unsealWith(srv: InProcessServer, keys: string[]): Promise<void> {
  for (const key of keys) await srv.api.call('PUT', 'sys/unseal', { body: { key } });
  const status = await srv.api.call('GET', 'sys/seal-status');
  assert.equal(status.body.sealed, false, status.text);
}

const check = (writer: number, i: number): string => createHash('sha256').update(`${writer}:${i}`).digest('hex');

describe('snapshots over HTTP', () => {
  it('a snapshot taken while 8 writers write restores, with the original keys, to a consistent store', async () => {
    const a = await server();
    for (let i = 0; i < 30; i++) {
      for (const v of [1, 2]) {
        const res = await a.api.call('PUT', `secret/data/pre/s${i}`, { body: { data: { value: `pre-${i}-v${v}` } } });
        assert.equal(res.status, 200, res.text);
      }
    }
    const policy = 'path "secret/data/pre/*" {\n  capabilities = ["read"]\n}\n';
    assert.equal((await a.api.call('PUT', 'sys/policies/acl/snap-reader', { body: { policy } })).status, 204);
    const created = await a.api.call('POST', 'auth/token/create', { body: { policies: ['snap-reader'] } });
    const token: string = created.body.auth.client_token;

    // Each writer creates secrets whose value says what they are, and records when each write was acknowledged.
    const acked: { path: string; writer: number; i: number; at: number }[] = [];
    let stop = false;
    const writer = async (w: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const path = `secret/data/live/w${w}/k${i}`;
        const res = await a.api.call('PUT', path, { body: { data: { writer: w, i, check: check(w, i) } } });
        assert.equal(res.status, 200, res.text);
        acked.push({ path, writer: w, i, at: performance.now() });
      }
    };
    const writers = Array.from({ length: 8 }, (_, w) => writer(w));
    await new Promise((r) => setTimeout(r, 300));
    const startedAt = performance.now();
    // A key rotation while the snapshot runs: entries after it use a term the snapshot's keyring must hold.
    const [bytes, rotated] = await Promise.all([getSnapshot(a), a.api.call('PUT', 'sys/rotate')]);
    assert.equal(rotated.status, 204, rotated.text);
    stop = true;
    await Promise.all(writers);
    const before = acked.filter((w) => w.at < startedAt);
    assert.ok(before.length > 0 && acked.length > before.length, 'writes went on before and during the snapshot');
    assert.ok(!bytes.includes('pre-1-v2'), 'the snapshot is compressed and encrypted');

    // Another server with its own keys (one share, where the snapshot's store has three, threshold two).
    const b = await server({ shares: 1, threshold: 1 });
    assert.equal((await b.api.call('PUT', 'secret/data/b-own', { body: { data: { mine: 'yes' } } })).status, 200);

    const unforced = await postSnapshot(b, bytes, false);
    assert.equal(unforced.status, 400, unforced.text);
    assert.match(unforced.text, /other unseal keys/);

    const damaged = Buffer.from(bytes);
    damaged[Math.floor(damaged.length / 2)]! ^= 0xff;
    for (const bad of [damaged, bytes.subarray(0, bytes.length - 100), Buffer.from('not a snapshot')]) {
      const refused = await postSnapshot(b, bad, true);
      assert.equal(refused.status, 400, refused.text);
      assert.match(refused.text, /snapshot/);
    }
    const noBody = await b.api.call('POST', 'sys/storage/snapshot-force', { body: {} });
    assert.equal(noBody.status, 400);
    assert.match(noBody.text, /application\/octet-stream/);
    // Refused snapshots left B as it was: unsealed, with its own data and keys.
    assert.equal((await b.api.call('GET', 'secret/data/b-own')).body.data.data.mine, 'yes');
    assert.equal((await b.api.call('GET', 'sys/seal-status')).body.n, 1);

    const restored = await postSnapshot(b, bytes, true);
    assert.equal(restored.status, 204, restored.text);
    const sealed = (await b.api.call('GET', 'sys/seal-status')).body;
    assert.equal(sealed.sealed, true);
    assert.equal(sealed.n, 3, "the snapshot's seal configuration");
    assert.equal(sealed.t, 2);
    await assert.rejects(unsealWith(b, b.keys));
    await b.api.call('PUT', 'sys/unseal', { body: { reset: true } });
    await unsealWith(b, a.keys.slice(1, 3));

    const asA = { token: a.rootToken };
    for (let i = 0; i < 30; i++) {
      const res = await b.api.call('GET', `secret/data/pre/s${i}`, asA);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.data.data.value, `pre-${i}-v2`);
      assert.equal(res.body.data.metadata.version, 2);
    }
    assert.equal((await b.api.call('GET', 'sys/policies/acl/snap-reader', asA)).body.data.policy, policy);
    const lookup = await b.api.call('GET', 'auth/token/lookup-self', { token });
    assert.equal(lookup.status, 200, lookup.text);
    assert.ok(lookup.body.data.policies.includes('snap-reader'));
    assert.equal((await b.api.call('GET', 'secret/data/pre/s3', { token })).status, 200, 'the policy applies');
    assert.equal((await b.api.call('GET', 'secret/data/b-own', asA)).status, 404, "B's own data is gone");

    for (const w of before) {
      const res = await b.api.call('GET', w.path, asA);
      assert.equal(res.status, 200, `${w.path} was acknowledged before the snapshot: ${res.text}`);
      assert.equal(res.body.data.data.check, check(w.writer, w.i));
    }
    let present = 0;
    for (let w = 0; w < 8; w++) {
      const list = await b.api.call('GET', `secret/metadata/live/w${w}?list=true`, asA);
      for (const key of list.status === 200 ? (list.body.data.keys as string[]) : []) {
        const res = await b.api.call('GET', `secret/data/live/w${w}/${key}`, asA);
        assert.equal(res.status, 200, `live/w${w}/${key} is listed, so it must read: ${res.text}`);
        const data = res.body.data.data;
        assert.equal(`k${data.i}`, key);
        assert.equal(data.writer, w);
        assert.equal(data.check, check(w, data.i));
        present++;
      }
    }
    assert.ok(present >= before.length);
  });
});

interface Result {
  code: number;
  out: string;
  err: string;
}

function program(): Command {
  return buildProgram();
}

/** Runs `cofre ARGS` in-process against srv (when given), capturing its output. */
async function cli(srv: InProcessServer | undefined, ...args: string[]): Promise<Result> {
  let out = '';
  let err = '';
  const saved: Streams = { stdout: stdio.stdout, stderr: stdio.stderr };
  const env = { ...process.env };
  stdio.stdout = { write: (s: string) => (out += s) };
  stdio.stderr = { write: (s: string) => (err += s) };
  for (const key of ['VAULT_ADDR', 'VAULT_TOKEN', 'COFRE_CACERT', 'VAULT_CACERT']) delete process.env[key];
  if (srv) {
    process.env.COFRE_ADDR = srv.url;
    process.env.COFRE_TOKEN = srv.rootToken;
  }
  try {
    return { code: await run(program(), args), out, err };
  } finally {
    Object.assign(stdio, saved);
    process.env = env;
  }
}

describe('cofre operator snapshot', () => {
  it('saves a snapshot to a file and restores it into another server', async () => {
    const dir = tempDir('snapshot-cli');
    dirs.push(dir);
    const c = await server();
    assert.equal((await c.api.call('PUT', 'secret/data/app', { body: { data: { password: 'hunter2' } } })).status, 200);
    const file = join(dir, 'backup.snap');
    const auditLog = join(dir, 'audit.log');
    const audit = await c.api.call('PUT', 'sys/audit/file', {
      body: { type: 'file', options: { file_path: auditLog } },
    });
    assert.equal(audit.status, 204, audit.text);

    const saved = await cli(c, 'operator', 'snapshot', 'save', file);
    assert.equal(saved.code, 0, saved.err);
    assert.match(saved.out, /^Success! Saved a snapshot to .*backup\.snap \(\d+ entries, .*\)\.$/m);
    assert.ok(!existsSync(`${file}.partial`));
    assert.ok(!readFileSync(file).includes('hunter2'));
    const audited = readFileSync(auditLog, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
      .filter((line) => line.request?.path === 'sys/storage/snapshot');
    assert.deepEqual(
      audited.map((line) => line.type),
      ['request', 'response'],
      'a snapshot is on the audit record',
    );

    const d = await server();
    assert.equal((await d.api.call('PUT', 'secret/data/d-own', { body: { data: { v: 1 } } })).status, 200);

    const bad = join(dir, 'damaged.snap');
    const bytes = readFileSync(file);
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    writeFileSync(bad, bytes);
    const refused = await cli(d, 'operator', 'snapshot', 'restore', '-force', bad);
    assert.equal(refused.code, 1);
    assert.match(refused.err, /^Error: .*damaged\.snap: .*damaged/m);

    const unforced = await cli(d, 'operator', 'snapshot', 'restore', file);
    assert.equal(unforced.code, 1);
    assert.match(unforced.err, /Code: 400[\s\S]*other unseal keys/);
    assert.equal((await d.api.call('GET', 'secret/data/d-own')).status, 200, 'refusals left the server as it was');

    const restored = await cli(d, 'operator', 'snapshot', 'restore', '-force', file);
    assert.equal(restored.code, 0, restored.err);
    assert.match(restored.out, /^Success! Restored the snapshot/m);
    assert.match(restored.out, /The server is sealed/);
    await unsealWith(d, c.keys.slice(0, 2));
    const read = await d.api.call('GET', 'secret/data/app', { token: c.rootToken });
    assert.equal(read.body.data.data.password, 'hunter2');
  });
});

describe('a snapshot asked for wrapped', () => {
  it('is refused, and the view of the store it had opened is let go', async () => {
    // Before, the stream was dropped unread: its read view (here a copy of the SQLite file; on PostgreSQL an open
    // transaction holding a pooled connection) stayed for good.
    const c = await server();
    const views = () => readdirSync(tmpdir()).filter((name) => name.startsWith('cofre-read-view-')).length;
    const before = views();
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${c.url}/v1/sys/storage/snapshot`, {
        headers: { 'x-vault-token': c.rootToken, 'x-vault-wrap-ttl': '60s' },
      });
      const text = await res.text();
      assert.equal(res.status, 400, text);
      assert.match(text, /a stream \(a snapshot\) and cannot be response-wrapped/);
    }
    const deadline = Date.now() + 5000;
    while (views() > before && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(views(), before, 'a read view was left behind');
    assert.ok((await getSnapshot(c)).length > 0, 'a snapshot is still taken unwrapped');
  });
});

describe('a snapshot restore cut short', () => {
  it('leaves a store nobody may initialize, which an offline restore brings back', async () => {
    // Before, a restore that failed after clearing the store left it reading as not initialized: the first caller of
    // sys/init, which needs no token, got new unseal keys and a root token for it.
    const dir = tempDir('restore-cut-short');
    dirs.push(dir);
    const c = await server({ dir });
    assert.equal((await c.api.call('PUT', 'secret/data/app', { body: { data: { password: 'hunter2' } } })).status, 200);
    const bytes = await getSnapshot(c);
    assert.equal((await c.api.call('PUT', 'secret/data/later', { body: { data: { v: 1 } } })).status, 200);

    // The store refuses the restore's first write of the snapshot's entries (as PostgreSQL refuses a key it cannot
    // hold, or a connection drops), once the store was cleared.
    const store = c.cofre.storage;
    const transaction = store.transaction.bind(store);
    store.transaction = async (ops) => {
      if (ops.some((op) => op.op === 'put' && op.key.startsWith('logical/'))) throw new Error('the store failed');
      return transaction(ops);
    };
    const restored = await postSnapshot(c, bytes, false);
    assert.equal(restored.status, 500, restored.text);
    store.transaction = transaction;

    const init = await fetch(`${c.url}/v1/sys/init`, {
      method: 'POST',
      body: JSON.stringify({ secret_shares: 1, secret_threshold: 1 }),
    });
    const initText = await init.text();
    assert.equal(init.status, 400, initText);
    assert.match(initText, /snapshot restore \(or a migration\) that did not finish, so it may not be initialized/);
    assert.doesNotMatch(initText, /root_token/);

    await c.stop();
    servers.splice(servers.indexOf(c), 1);
    const file = join(dir, 'backup.snap');
    writeFileSync(file, bytes);
    const config = join(dir, 'server.hcl');
    // The server's own configuration file, as its operator has it.
    const storage = `storage "sqlite" {\n  path = "${join(dir, 'cofre.db')}"\n}\n`;
    writeFileSync(config, `${storage}listener "tcp" {\n  address = "127.0.0.1:8200"\n  tls_disable = true\n}\n`);
    const offline = await cli(undefined, 'operator', 'snapshot', 'restore', '-offline-config', config, file);
    assert.equal(offline.code, 0, offline.err);
    assert.match(offline.out, /^Success! Restored the snapshot .*backup\.snap .* into the store of .*server\.hcl/m);

    const back = await server({ dir, initialised: false });
    await unsealWith(back, c.keys.slice(0, 2));
    const read = await back.api.call('GET', 'secret/data/app', { token: c.rootToken });
    assert.equal(read.body.data.data.password, 'hunter2');
    assert.equal((await back.api.call('GET', 'secret/data/later', { token: c.rootToken })).status, 404);
  });
});

describe('cofre operator migrate', () => {
  it('copies a stopped server’s SQLite store to another file, which unseals with the original keys', async () => {
    const from = tempDir('migrate-from');
    const to = tempDir('migrate-to');
    dirs.push(from, to);
    const e = await startServer({ dir: from });
    for (let i = 0; i < 20; i++) {
      assert.equal((await e.api.call('PUT', `secret/data/m${i}`, { body: { data: { i } } })).status, 200);
    }
    const token = (await e.api.call('POST', 'auth/token/create', { body: { policies: ['default'] } })).body.auth
      .client_token as string;
    await e.stop();

    const config = join(from, 'migrate.hcl');
    writeFileSync(
      config,
      `storage_source "sqlite" {\n  path = "${join(from, 'cofre.db')}"\n}\n\n` +
        `storage_destination "sqlite" {\n  path = "${join(to, 'cofre.db')}"\n}\n`,
    );
    const migrated = await cli(undefined, 'operator', 'migrate', '-config', config);
    assert.equal(migrated.code, 0, migrated.err);
    assert.match(
      migrated.out,
      /^Success! Migrated \d+ entries .* from sqlite \(.*\) to sqlite \(.*\), and checked the copy\.$/m,
    );

    const again = await cli(undefined, 'operator', 'migrate', '-config', config);
    assert.equal(again.code, 1);
    assert.match(again.err, /destination store .* is not empty; use -reset/);
    const reset = await cli(undefined, 'operator', 'migrate', '-config', config, '-reset');
    assert.equal(reset.code, 0, reset.err);

    const missing = join(from, 'missing.hcl');
    writeFileSync(
      missing,
      `storage_source "sqlite" {\n  path = "${join(from, 'nope.db')}"\n}\n` +
        `storage_destination "sqlite" {\n  path = "${join(to, 'x.db')}"\n}\n`,
    );
    const nothing = await cli(undefined, 'operator', 'migrate', '-config', missing);
    assert.equal(nothing.code, 1);
    assert.match(nothing.err, /nope\.db does not exist/);

    const f = await startServer({ dir: to, initialised: false });
    servers.push(f);
    await unsealWith(f, e.keys.slice(0, 2));
    for (let i = 0; i < 20; i++) {
      const res = await f.api.call('GET', `secret/data/m${i}`, { token: e.rootToken });
      assert.equal(res.body.data.data.i, i);
    }
    assert.equal((await f.api.call('GET', 'auth/token/lookup-self', { token })).status, 200);
  });

  it('goes through PostgreSQL and back: sqlite → postgresql → sqlite, still unsealed by the original keys', async () => {
    const from = tempDir('migrate-pg-from');
    const back = tempDir('migrate-pg-back');
    dirs.push(from, back);
    const h = await startServer({ dir: from });
    for (let i = 0; i < 10; i++) {
      assert.equal((await h.api.call('PUT', `secret/data/pg${i}`, { body: { data: { i } } })).status, 200);
    }
    await h.stop();
    const db = await startPostgres();
    try {
      const postgres = `storage_destination "postgresql" {\n  connection_url = "${db.url}"\n  table = "cofre_migrated"\n}\n`;
      const toPg = join(from, 'to-pg.hcl');
      writeFileSync(toPg, `storage_source "sqlite" {\n  path = "${join(from, 'cofre.db')}"\n}\n${postgres}`);
      const there = await cli(undefined, 'operator', 'migrate', '-config', toPg);
      assert.equal(there.code, 0, there.err);
      assert.match(there.out, /to postgresql \(127\.0\.0\.1:\d+\/postgres, table cofre_migrated\)/);
      assert.ok(!there.out.includes(db.password) && !there.err.includes(db.password), 'the password is not shown');

      const fromPg = join(from, 'from-pg.hcl');
      writeFileSync(
        fromPg,
        postgres.replace('storage_destination', 'storage_source') +
          `storage_destination "sqlite" {\n  path = "${join(back, 'cofre.db')}"\n}\n`,
      );
      const andBack = await cli(undefined, 'operator', 'migrate', '-config', fromPg);
      assert.equal(andBack.code, 0, andBack.err);
    } finally {
      await db.stop();
    }
    const g = await startServer({ dir: back, initialised: false });
    servers.push(g);
    await unsealWith(g, h.keys.slice(0, 2));
    for (let i = 0; i < 10; i++) {
      assert.equal((await g.api.call('GET', `secret/data/pg${i}`, { token: h.rootToken })).body.data.data.i, i);
    }
  });
});

describe('a snapshot restored into a PostgreSQL store', () => {
  it('gives back secrets, policies, tokens and leases, unsealed with the original keys', async () => {
    const db = await startPostgres();
    const nodeDir = tempDir('snapshot-pg-node');
    dirs.push(nodeDir);
    let node: Node | undefined;
    let other: Node | undefined;
    try {
      const source = await server();
      const put = async (path: string, body: unknown) => {
        const res = await source.api.call('PUT', path, { body });
        assert.ok(res.status < 300, `${path}: ${res.text}`);
        return res;
      };
      await put('secret/data/app/db', { data: { password: 'kept-in-snapshot' } });
      await put('sys/policies/acl/app', { policy: 'path "secret/data/app/*" { capabilities = ["read"] }' });
      const token = (await put('auth/token/create', { policies: ['app'] })).body.auth.client_token as string;
      await put('sys/mounts/database', { type: 'database' });
      await put('database/config/pg', {
        plugin_name: 'postgresql-database-plugin',
        connection_url: `postgresql://{{username}}:{{password}}@${db.host}:${db.port}/postgres`,
        username: db.user,
        password: db.password,
        allowed_roles: '*',
      });
      await put('database/roles/app', {
        db_name: 'pg',
        creation_statements: [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}'`],
        default_ttl: '1h',
      });
      const creds = await source.api.call('GET', 'database/creds/app');
      assert.equal(creds.status, 200, creds.text);
      const snapshot = await getSnapshot(source);

      // A new node on an empty PostgreSQL table, initialised with throwaway keys so it takes the upload.
      node = await startNode(nodeDir, 'restored', db.url);
      const init = await node.api.call('PUT', 'sys/init', { body: { secret_shares: 1, secret_threshold: 1 } });
      await unseal(node, init.body.keys, 1);
      // Another node of the cluster, unsealed: a restore now would mix what it writes into the restored store.
      other = await startNode(nodeDir, 'other', db.url);
      await unseal(other, init.body.keys, 1);
      const restore = () =>
        fetch(`${node!.url}/v1/sys/storage/snapshot-force`, {
          method: 'POST',
          headers: { 'x-vault-token': init.body.root_token, 'content-type': 'application/octet-stream' },
          body: new Uint8Array(snapshot),
        });
      await until(
        'the other node is seen',
        async () => {
          const res = await restore();
          const text = await res.text();
          assert.notEqual(res.status, 204, 'restored while another node was unsealed');
          return /other nodes of this cluster are unsealed \(http:\/\/127\.0\.0\.1:\d+\): seal/.test(text)
            ? true
            : undefined;
        },
        10_000,
      );
      assert.equal((await other.api.call('PUT', 'sys/seal', { token: init.body.root_token })).status, 204);
      const restored = await until(
        'the restore, once the other node is sealed',
        async () => {
          const res = await restore();
          if (res.status === 204) return res;
          await new Promise((resolve) => setTimeout(resolve, 1000));
          return undefined;
        },
        30_000,
      );
      assert.equal(restored.status, 204);
      await unseal(node, source.keys, 2);

      const api = apiClient(node.url, source.rootToken);
      assert.equal((await api.call('GET', 'secret/data/app/db')).body.data.data.password, 'kept-in-snapshot');
      assert.equal((await api.call('GET', 'secret/data/app/db', { token })).status, 200);
      assert.match((await api.call('GET', 'sys/policies/acl/app')).body.data.policy, /secret\/data\/app/);
      const lease = await api.call('PUT', 'sys/leases/lookup', { body: { lease_id: creds.body.lease_id } });
      assert.equal(lease.status, 200, lease.text);
      assert.equal(
        (await api.call('PUT', 'sys/leases/revoke', { body: { lease_id: creds.body.lease_id } })).status,
        204,
      );
      const role = await db.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [creds.body.data.username]);
      assert.equal(role.length, 0, 'the lease restored from the snapshot revokes its database role');
    } finally {
      await node?.kill('SIGKILL');
      await other?.kill('SIGKILL');
      await db.stop();
    }
  });
});
