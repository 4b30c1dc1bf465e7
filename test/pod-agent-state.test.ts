// Attacks on the in-pod agents' state files. An application container that gets a dynamic credential in env vars
// writes its exec state file (its token and lease ids) for the sidecar; such a container could plant anything there.
// Here a test acting as that container plants files on disk, as the container could in its own directory of the
// exec-state volume, and the sidecar's real code (ExecLeases, FilesAgent) reads them against a real Cofre (in process),
// a real kube-apiserver (the Kubernetes logins' TokenReview) and a real PostgreSQL (the leases): every foreign token,
// symbolic link, FIFO or forged lease is refused, logged with the reason and never the token, and changes nothing the
// sidecar holds. A genuine exec run (`cofre agent exec`, spawned) is still taken over and renewed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestDatabase } from '../scripts/test-databases.js';
import { VaultClient } from '../src/client/client.js';
import { parseConfig } from '../src/kube/pod-agent/config.js';
import { ExecLeases } from '../src/kube/pod-agent/exec-leases.js';
import { FilesAgent } from '../src/kube/pod-agent/files-agent.js';
import { writeHandover, type Handover } from '../src/kube/pod-agent/handover.js';
import type { Log } from '../src/kube/pod-agent/log.js';
import { postgres } from './database-flavors.js';
import {
  agentEnv,
  freshDir,
  NAMESPACE,
  ROLE,
  SERVICE_ACCOUNT,
  spawnAgent,
  startAgentWorld,
  type AgentWorld,
} from './pod-agent-support.js';
import { until, writeOk } from './support.js';

const ADMIN = 'cofre_admin';
const ADMIN_PASSWORD = 'state-admin-pw-8e21';
const TTL = 4;
const POLICY =
  'path "database/creds/app" {\n  capabilities = ["read"]\n}\npath "secret/data/app/*" {\n  capabilities = ["read"]\n}\n';

interface Line {
  level: string;
  msg: string;
  [field: string]: unknown;
}

describe('the in-pod agents’ state files, attacked by an application container', () => {
  let world: AgentWorld;
  let db: TestDatabase;
  let intruderJwt: string;
  const tokens = new Set<string>();
  const logText: string[] = [];

  const collector = () => {
    const lines: Line[] = [];
    const log: Log = (level, msg, fields = {}) => {
      const line = { level, msg, ...fields };
      lines.push(line);
      logText.push(JSON.stringify(line));
    };
    return { lines, log };
  };
  const login = async (role: string, jwt: string): Promise<{ token: string; accessor: string }> => {
    const res = await world.srv.api.call('POST', 'auth/kubernetes/login', { body: { role, jwt } });
    assert.equal(res.status, 200, res.text);
    tokens.add(res.body.auth.client_token);
    return { token: res.body.auth.client_token, accessor: res.body.auth.accessor };
  };
  const podJwt = () => world.jwts[0]!;
  const valid = async (token: string) =>
    (await world.srv.api.call('GET', 'auth/token/lookup-self', { token })).status === 200;
  const issue = async (token: string) => {
    const res = await world.srv.api.call('GET', 'database/creds/app', { token });
    assert.equal(res.status, 200, res.text);
    return { id: res.body.lease_id as string, duration: res.body.lease_duration as number };
  };
  const leaseKnown = async (id: string) =>
    (await world.srv.api.call('PUT', 'sys/leases/lookup', { body: { lease_id: id } })).status === 200;
  /** A state file as `cofre agent exec` writes it, with whatever the attacker chooses in it. */
  const plant = (file: string, token: string, leases: Handover['leases'] = {}) =>
    writeHandover(file, { token, ttl: 3600, renewable: true, leases, digests: {} }, 0o644);
  const sidecarFor = (files: string[], ownAccessor: () => string | undefined) => {
    const { lines, log } = collector();
    const nearing: string[] = [];
    const leases = new ExecLeases({
      files,
      client: new VaultClient({ address: world.srv.url }),
      auth: { mount: 'kubernetes', role: ROLE, tokenPath: world.tokenFile },
      log,
      ownAccessor,
      onNearingEnd: (_file, item) => nearing.push(item),
    });
    return { leases, lines, nearing };
  };
  const refusals = (lines: Line[]) => lines.filter((l) => l.msg.startsWith('refused an exec state file'));
  /** The exec-state volume as the sidecar sees it: one directory per application container. */
  const execState = (name: string) => {
    const root = freshDir(world, name);
    const fileOf = (container: string) => {
      mkdirSync(join(root, container), { recursive: true });
      return join(root, container, 'leases.json');
    };
    return { root, fileOf };
  };

  before(async () => {
    world = await startAgentWorld('pod-agent-state', POLICY);
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
      max_ttl: 3600,
    });
    await writeOk(world.srv.api, 'secret/data/app/db', { data: { password: 'kv-pass-4f0a' } });
    // Another service account the same role accepts, and another role the pod's own account may log in with.
    await world.core.createNamespacedServiceAccount({ namespace: NAMESPACE, body: { metadata: { name: 'intruder' } } });
    const minted = await world.core.createNamespacedServiceAccountToken({
      namespace: NAMESPACE,
      name: 'intruder',
      body: { spec: { audiences: ['cofre'], expirationSeconds: 3600 } },
    });
    intruderJwt = minted.status!.token;
    world.jwts.push(intruderJwt);
    for (const [role, accounts] of [
      [ROLE, [SERVICE_ACCOUNT, 'intruder']],
      ['other', [SERVICE_ACCOUNT]],
    ] as const)
      await writeOk(world.srv.api, `auth/kubernetes/role/${role}`, {
        bound_service_account_names: accounts,
        bound_service_account_namespaces: [NAMESPACE],
        audience: 'cofre',
        token_policies: ['app'],
        token_ttl: '1h',
      });
  });
  after(async () => {
    await world?.stop();
    await db?.stop();
    if (world) rmSync(world.dir, { recursive: true, force: true });
  });

  it('takes over a genuine exec run: renews its lease on Cofre’s times, not the file’s, and revokes it when the container restarts', async () => {
    const { fileOf } = execState('genuine');
    const file = fileOf('app');
    // `cofre agent exec` as the application container runs it: it leaves its token and lease there, mode 0644.
    const execRun = async () => {
      const agent = spawnAgent(['exec', '--', 'true'], {
        ...agentEnv(world, {
          auth: { role: ROLE, token_path: world.tokenFile },
          state_file: file,
          items: [{ name: 'pg', path: 'database/creds/app', env: { PGUSER: 'username', PGPASSWORD: 'password' } }],
        }),
      });
      const exit = await agent.exited;
      logText.push(agent.output());
      assert.equal(exit.code, 0, agent.output());
      assert.equal(statSync(file).mode & 0o777, 0o644);
      return JSON.parse(readFileSync(file, 'utf8')) as Handover;
    };
    const first = await execRun();
    tokens.add(first.token);
    // The file also claims the lease is not renewable and ends in half a second: the sidecar must not believe it.
    await writeHandover(
      file,
      {
        ...first,
        leases: { pg: { ...first.leases.pg!, renewable: false, expiresAt: Date.now() + 500, requested: 1 } },
      },
      0o644,
    );
    const sidecar = sidecarFor([file], () => undefined);
    try {
      sidecar.leases.start();
      await sidecar.leases.settled();
      assert.ok(
        sidecar.lines.some((l) => l.msg === 'renewing the leases of an exec run' && l.container === 'app'),
        JSON.stringify(sidecar.lines),
      );
      await until(
        'the sidecar renews the lease (at two thirds of its 4 s TTL)',
        async () => sidecar.lines.find((l) => l.msg === 'renewed a lease of an exec run') ?? undefined,
        8_000,
      );
      assert.deepEqual(sidecar.nearing, [], 'the forged expiry and renewable flag ran no on_change');
      // The container restarts: a new exec run, a new token and lease; the old ones are revoked.
      const second = await execRun();
      tokens.add(second.token);
      await sidecar.leases.settled();
      assert.ok(sidecar.lines.some((l) => l.msg === 'revoked the token of an exec run'));
      assert.equal(await valid(first.token), false, 'the old run’s token is revoked');
      await until(
        'the old run’s lease is revoked with its token',
        async () => ((await leaseKnown(first.leases.pg!.id)) ? undefined : true),
        5_000,
      );
      assert.equal(await valid(second.token), true);
      assert.deepEqual(refusals(sidecar.lines), []);
    } finally {
      await sidecar.leases.stop(true);
    }
  });

  it('refuses tokens that are not this pod’s exec login, and keeps the run it holds', async () => {
    const { fileOf } = execState('foreign');
    const app = fileOf('app');
    const worker = fileOf('worker');
    const sidecarOwn = await login(ROLE, podJwt());
    const held = await login(ROLE, podJwt());
    const heldLease = await issue(held.token);
    const lease = (id: string) => ({
      pg: { id, duration: TTL, renewable: true, requested: TTL, expiresAt: Date.now() + TTL * 1000 },
    });
    await plant(app, held.token, lease(heldLease.id));
    const sidecar = sidecarFor([app, worker], () => sidecarOwn.accessor);
    try {
      sidecar.leases.start();
      await sidecar.leases.settled();
      assert.ok(sidecar.lines.some((l) => l.msg === 'renewing the leases of an exec run' && l.container === 'app'));

      const uid = (await world.core.readNamespacedServiceAccount({ namespace: NAMESPACE, name: SERVICE_ACCOUNT }))
        .metadata!.uid!;
      // auth/token/create lets its holder write any metadata: this one claims to be the pod's login.
      const created = await world.srv.api.call('POST', 'auth/token/create', {
        body: {
          policies: ['app'],
          meta: {
            role: ROLE,
            service_account_name: SERVICE_ACCOUNT,
            service_account_namespace: NAMESPACE,
            service_account_uid: uid,
          },
        },
      });
      assert.equal(created.status, 200, created.text);
      tokens.add(created.body.auth.client_token);
      const planted: [string, string, string, RegExp][] = [
        ['created', app, created.body.auth.client_token, /issued by auth\/token\/create, not auth\/kubernetes\/login/],
        ['other role', app, (await login('other', podJwt())).token, /of role "other", not "app"/],
        ['other account', app, (await login(ROLE, intruderJwt)).token, /service account apps\/intruder, not apps\/web/],
        ['sidecar’s own', app, sidecarOwn.token, /the sidecar’s own/],
        ['another container’s', worker, held.token, /the one container app reported/],
        ['revoked', app, 'hvs.not-a-token-at-all', /not valid/],
      ];
      for (const [what, file, token, reason] of planted) {
        const before = refusals(sidecar.lines).length;
        await plant(file, token, lease(heldLease.id));
        await sidecar.leases.settled();
        const refused = refusals(sidecar.lines).slice(before);
        assert.equal(refused.length, 1, `${what}: ${JSON.stringify(sidecar.lines.slice(-3))}`);
        assert.match(String(refused[0]!.reason), reason, what);
        assert.equal(refused[0]!.container, file === app ? 'app' : 'worker');
        // Refused once per write, not at every check.
        await sidecar.leases.settled();
        assert.equal(refusals(sidecar.lines).length, before + 1, `${what}: logged once`);
        if (token.startsWith('hvs.not')) continue;
        assert.equal(await valid(token), true, `${what}: the planted token is left alone (not revoked)`);
      }
      // Through all of it, the genuine run was neither retired nor its lease revoked.
      assert.ok(!sidecar.lines.some((l) => l.msg === 'revoked the token of an exec run'));
      assert.equal(await valid(held.token), true);
      assert.equal(await leaseKnown(heldLease.id), true);
      assert.equal(await valid(sidecarOwn.token), true, 'the sidecar’s own token survives');
    } finally {
      await sidecar.leases.stop(false);
    }
  });

  it('follows no symbolic link, reads no FIFO or oversized file, and renews no lease Cofre does not know', async () => {
    const { root, fileOf } = execState('files');
    const app = fileOf('app');
    const worker = fileOf('worker');
    const held = await login(ROLE, podJwt());
    const heldLease = await issue(held.token);
    await plant(app, held.token, {
      pg: { id: heldLease.id, duration: TTL, renewable: true, requested: TTL, expiresAt: Date.now() + TTL * 1000 },
    });
    // The agents' own state file, as the sidecar sees it (a file only agent containers can write).
    const agentState = join(root, 'agent.json');
    const sidecarOwn = await login(ROLE, podJwt());
    await plant(agentState, sidecarOwn.token);
    const sidecar = sidecarFor([app, worker], () => sidecarOwn.accessor);
    try {
      sidecar.leases.start();
      await sidecar.leases.settled();
      const attempts: [string, () => void, RegExp][] = [
        ['a link to another container’s file', () => symlinkSync(app, worker), /symbolic link/],
        ['a link to the agents’ own state', () => symlinkSync(agentState, worker), /symbolic link/],
        ['a FIFO', () => execFileSync('mkfifo', [worker]), /not a regular file/],
        ['a directory', () => mkdirSync(worker), /not a regular file/],
        ['an oversized file', () => writeFileSync(worker, ' '.repeat(70 * 1024)), /larger than 65536 bytes/],
        ['not JSON', () => writeFileSync(worker, '{"token":'), /not JSON/],
        [
          'an item name no item has',
          () =>
            writeFileSync(
              worker,
              JSON.stringify({ token: held.token, ttl: 1, renewable: true, leases: { '../x': { id: 'a' } } }),
            ),
          /not an agent state file|no item can have/,
        ],
      ];
      for (const [what, plantIt, reason] of attempts) {
        rmSync(worker, { recursive: true, force: true });
        plantIt();
        const before = refusals(sidecar.lines).length;
        // A FIFO would hang a plain read forever: this must settle at once.
        await Promise.race([
          sidecar.leases.settled(),
          new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: the sidecar hangs`)), 5_000)),
        ]);
        const refused = refusals(sidecar.lines).slice(before);
        assert.equal(refused.length, 1, `${what}: ${JSON.stringify(sidecar.lines.slice(-3))}`);
        assert.match(String(refused[0]!.reason), reason, what);
      }
      rmSync(worker, { recursive: true, force: true });
      assert.ok(!sidecar.lines.some((l) => l.msg === 'revoked the token of an exec run'));
      assert.equal(await valid(held.token), true, 'the run it holds is not retired by a link to its file');
      assert.equal(await valid(sidecarOwn.token), true, 'nor is the sidecar’s own token');

      // A genuine token, with a lease id Cofre never issued that "ends" in 300 ms: dropped, and no on_change.
      const workerRun = await login(ROLE, podJwt());
      await plant(worker, workerRun.token, {
        pg: {
          id: 'database/creds/app/forged',
          duration: 1,
          renewable: false,
          requested: 1,
          expiresAt: Date.now() + 300,
        },
      });
      await sidecar.leases.settled();
      assert.ok(
        sidecar.lines.some((l) => l.msg.includes('names a lease Cofre does not know') && l.container === 'worker'),
        JSON.stringify(sidecar.lines.slice(-3)),
      );
      await new Promise((r) => setTimeout(r, 600));
      assert.deepEqual(sidecar.nearing, []);
    } finally {
      await sidecar.leases.stop(true);
    }
    assert.equal(await valid(held.token), false, 'on stop, what it took over is revoked');
  });

  it('the sidecar does not take over a foreign token from the agents’ own state file', async () => {
    const dir = freshDir(world, 'handover');
    const stateFile = join(dir, 'state', 'agent.json');
    const config = parseConfig(
      JSON.stringify({
        auth: { role: ROLE, token_path: world.tokenFile },
        files_dir: join(dir, 'secrets'),
        state_file: stateFile,
        items: [{ name: 'db', kv: 'secret/app/db', file: { path: 'db', mode: '0400', format: 'raw' } }],
      }),
    );
    const run = async () => {
      const { lines, log } = collector();
      const agent = new FilesAgent({ config, client: new VaultClient({ address: world.srv.url }), tls: {}, log });
      await agent.renderAll();
      const token = agent.session.current()!.token;
      tokens.add(token);
      await agent.stop(false);
      return { lines, token };
    };
    const other = await login(ROLE, intruderJwt);
    await plant(stateFile, other.token);
    const refused = await run();
    assert.ok(
      refused.lines.some(
        (l) => l.msg.startsWith('not taking over the token') && /service account apps\/intruder/.test(String(l.reason)),
      ),
      JSON.stringify(refused.lines),
    );
    assert.notEqual(refused.token, other.token, 'it logged in as itself');
    assert.equal(await valid(other.token), true, 'and left the planted token alone');
    // The pod's own login in the same file is taken over (the init container's handover).
    const own = await login(ROLE, podJwt());
    await plant(stateFile, own.token);
    const adopted = await run();
    assert.equal(adopted.token, own.token);
    assert.ok(adopted.lines.some((l) => l.msg === 'took over the token of the previous agent run'));
  });

  it('never logs a token or a service-account token', () => {
    const all = logText.join('\n');
    assert.ok(all.includes('refused an exec state file'));
    for (const secret of [...tokens, ...world.jwts]) assert.ok(!all.includes(secret), 'a token is in the log');
  });
});
