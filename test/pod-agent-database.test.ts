// The in-pod agent with a dynamic PostgreSQL credential (a real PostgreSQL, scripts/test-databases.ts): the sidecar
// renews the lease before its TTL, issues a new credential before the max TTL and re-renders the file, and on
// SIGTERM revokes its token, which revokes the credential (the role leaves pg_roles); with revoke_on_exit false
// the credential outlives the agent.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestDatabase } from '../scripts/test-databases.js';
import { canLogIn, postgres } from './database-flavors.js';
import { agentEnv, freshDir, spawnAgent, startAgentWorld, type AgentWorld } from './pod-agent-support.js';
import { until, writeOk } from './support.js';

const ADMIN = 'cofre_admin';
const ADMIN_PASSWORD = 'agent-admin-pw-31c8';
const TTL = 3;
const MAX_TTL = 9;

describe('cofre agent with a dynamic PostgreSQL credential', () => {
  let world: AgentWorld;
  let db: TestDatabase;
  const outputs: string[] = [];
  const passwords = new Set<string>([ADMIN_PASSWORD]);

  const exists = async (user: string) =>
    (await db.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [user])).length > 0;
  const readCred = (file: string) => {
    const m = /^user=(\S+) password=(\S+)$/.exec(readFileSync(file, 'utf8').trim());
    assert.ok(m, 'the file holds the template');
    passwords.add(m[2]!);
    return { username: m[1]!, password: m[2]! };
  };
  const itemConfig = (dir: string, extra: object = {}) => ({
    auth: { role: 'app', token_path: world.tokenFile },
    files_dir: join(dir, 'secrets'),
    items: [
      {
        name: 'pg',
        path: 'database/creds/app',
        file: {
          path: 'pg.conf',
          mode: '0440',
          format: 'template',
          template: 'user={{ .Data.username }} password={{ .Data.password }}',
        },
      },
    ],
    ...extra,
  });
  const status = (file: string) => JSON.parse(readFileSync(file, 'utf8')).items[0];

  before(async () => {
    world = await startAgentWorld('pod-agent-db', 'path "database/creds/app" {\n  capabilities = ["read"]\n}\n');
    db = await postgres.start();
    for (const sql of postgres.setup(ADMIN, ADMIN_PASSWORD)) await db.query(sql);
    await writeOk(world.srv.api, 'sys/mounts/database', { type: 'database' });
    await writeOk(world.srv.api, 'database/config/main', {
      plugin_name: postgres.plugin,
      connection_url: postgres.connectionUrl(db),
      username: ADMIN,
      password: ADMIN_PASSWORD,
      allowed_roles: '*',
    });
    await writeOk(world.srv.api, 'database/roles/app', {
      db_name: 'main',
      creation_statements: postgres.creation,
      default_ttl: TTL,
      max_ttl: MAX_TTL,
    });
  });
  after(async () => {
    await world?.stop();
    await db?.stop();
    if (world) rmSync(world.dir, { recursive: true, force: true });
  });

  it('renews the lease before its TTL, re-issues before the max TTL, and revokes on SIGTERM', async () => {
    const dir = freshDir(world, 'renew');
    const statusFile = join(dir, 'status.json');
    const file = join(dir, 'secrets', 'pg.conf');
    const agent = spawnAgent([`-status-file=${statusFile}`], agentEnv(world, itemConfig(dir)));
    try {
      await until('the credential is rendered', async () => (existsSync(file) ? true : undefined), 20_000);
      const issued = Date.now();
      const first = readCred(file);
      assert.ok(await canLogIn(postgres, db, first.username, first.password));

      // Past the first TTL, the credential still works: the agent renewed it.
      await until(
        'a lease renewal',
        async () => (status(statusFile).leaseRenewals >= 1 ? true : undefined),
        TTL * 1000,
      );
      await until(
        'the first TTL is over',
        async () => (Date.now() - issued > TTL * 1000 + 500 ? true : undefined),
        5_000,
      );
      assert.ok(await canLogIn(postgres, db, first.username, first.password), 'renewed past its first TTL');
      assert.equal(readCred(file).username, first.username, 'a renewal keeps the credential');

      // Before the max TTL ends it, a new credential is issued and rendered.
      await until(
        'a new credential in the file',
        async () => (readCred(file).username !== first.username ? true : undefined),
        MAX_TTL * 1000 + 2_000,
      );
      assert.ok(Date.now() - issued < MAX_TTL * 1000, 're-issued before the max TTL');
      const second = readCred(file);
      assert.ok(await canLogIn(postgres, db, second.username, second.password));
      assert.equal(status(statusFile).leaseReissues, 1);

      agent.child.kill('SIGTERM');
      const exit = await agent.exited;
      outputs.push(agent.output());
      assert.equal(exit.code, 0, agent.output());
      await until(
        'the credential role is dropped',
        async () => ((await exists(second.username)) ? undefined : true),
        5_000,
      );
      // The first credential ended with its max TTL (the server's expiration revoked it).
      await until('the first role is dropped', async () => ((await exists(first.username)) ? undefined : true), 10_000);
    } catch (err) {
      outputs.push(agent.output());
      throw new Error(`${(err as Error).message}\nagent output:\n${agent.output()}`);
    } finally {
      agent.child.kill('SIGKILL');
    }
  });

  it('with revoke_on_exit false, the credential outlives the agent', async () => {
    const dir = freshDir(world, 'keep');
    const file = join(dir, 'secrets', 'pg.conf');
    const agent = spawnAgent([], agentEnv(world, itemConfig(dir, { revoke_on_exit: false })));
    try {
      await until('the credential is rendered', async () => (existsSync(file) ? true : undefined), 20_000);
      const cred = readCred(file);
      agent.child.kill('SIGTERM');
      const exit = await agent.exited;
      outputs.push(agent.output());
      assert.equal(exit.code, 0, agent.output());
      assert.ok(await exists(cred.username), 'the role is still there after the agent stopped');
      assert.doesNotMatch(agent.output(), /revoked the token/);
    } finally {
      agent.child.kill('SIGKILL');
    }
  });

  it('the sidecar takes over the init container’s credential through the state file: one database user per pod', async () => {
    const dir = freshDir(world, 'handover');
    const stateFile = join(dir, 'state', 'agent.json');
    const file = join(dir, 'secrets', 'pg.conf');
    const config = itemConfig(dir, { state_file: stateFile });
    const leases = async () => {
      const res = await world.srv.api.call('LIST', 'sys/leases/lookup/database/creds/app/');
      return res.status === 404 ? [] : (res.body.data.keys as string[]);
    };
    const before = await leases();

    const init = spawnAgent(['-init'], agentEnv(world, config));
    const initExit = await init.exited;
    outputs.push(init.output());
    assert.equal(initExit.code, 0, init.output());
    const first = readCred(file);
    const state = readFileSync(stateFile, 'utf8');
    assert.equal(statSync(stateFile).mode & 0o777, 0o600, 'the state file (a token) is the agent’s alone');
    assert.ok(!state.includes(first.password), 'the state file holds no credential');

    const sidecar = spawnAgent([], agentEnv(world, config));
    try {
      await until(
        'the sidecar took over',
        async () => (/took over the previous/.test(sidecar.output()) ? true : undefined),
        20_000,
      );
      await until(
        'a renewal of the taken-over lease',
        async () => (/renewed a lease/.test(sidecar.output()) ? true : undefined),
        TTL * 1000,
      );
      assert.equal(readCred(file).username, first.username, 'the same credential: none issued again');
      const mine = (await leases()).filter((l) => !before.includes(l));
      assert.equal(mine.length, 1, 'one lease for the pod, not one per agent run');
      assert.ok(await canLogIn(postgres, db, first.username, first.password));
      sidecar.child.kill('SIGTERM');
      const exit = await sidecar.exited;
      outputs.push(sidecar.output());
      assert.equal(exit.code, 0, sidecar.output());
      await until('the role is dropped', async () => ((await exists(first.username)) ? undefined : true), 5_000);
      assert.ok(!existsSync(stateFile), 'the state file goes with the revoked token');
    } catch (err) {
      outputs.push(sidecar.output());
      throw new Error(`${(err as Error).message}\nsidecar output:\n${sidecar.output()}`);
    } finally {
      sidecar.child.kill('SIGKILL');
    }
  });

  it('exec mode: a dynamic credential in env vars outlives the agent (its token is not revoked)', async () => {
    const dir = freshDir(world, 'exec');
    const config = {
      auth: { role: 'app', token_path: world.tokenFile },
      items: [{ name: 'pg', path: 'database/creds/app', env: { PGUSER: 'username', PGPASSWORD: 'password' } }],
    };
    const agent = spawnAgent(['exec', '--', 'sh', '-c', 'printf "%s %s" "$PGUSER" "$PGPASSWORD" > "$OUT/cred"'], {
      ...agentEnv(world, config),
      OUT: dir,
    });
    const exit = await agent.exited;
    outputs.push(agent.output());
    assert.equal(exit.code, 0, agent.output());
    const [username, password] = readFileSync(join(dir, 'cred'), 'utf8').split(' ') as [string, string];
    passwords.add(password);
    assert.ok(await canLogIn(postgres, db, username, password), 'the credential works after the agent is gone');
  });

  it("never writes a credential or a token in the agent's output", () => {
    const all = outputs.join('\n');
    assert.ok(all.includes('renewed a lease'));
    for (const p of passwords) assert.ok(!all.includes(p), 'a password appears in the agent output');
    for (const jwt of world.jwts) assert.ok(!all.includes(jwt));
    assert.doesNotMatch(all, /cvs\.[A-Za-z0-9]/);
  });
});
