// `cofre agent` as a real process (through tsx) against an in-process Cofre server whose Kubernetes auth validates
// real service-account tokens of a real kube-apiserver: the init container's render, the sidecar following a KV
// write, exec mode's environment, the exec runtime run inside a chroot that holds only busybox, and bad
// configurations. Every wait polls against a deadline.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { homedir } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { EXEC_PREFIX } from '../src/kube/pod-agent/contract.js';
import { until, writeOk } from './support.js';
import {
  agentEnv,
  freshDir,
  spawnAgent,
  startAgentWorld,
  type AgentWorld,
  type RunningAgent,
} from './pod-agent-support.js';

const POLICY = 'path "secret/data/app/*" {\n  capabilities = ["read"]\n}\n';
const DB = { username: 'app_user', password: 'db-pass-5c1d7e' };
const API = { key: 'api-key-93b0f2', unused: 'unused-7a44' };
const REGISTRY = { registry: 'registry.example:5000', username: 'puller', password: 'pull-pass-e18c' };

function mode(file: string): number {
  return statSync(file).mode & 0o777;
}

/** Node.js 24, if scripts/node-lts.sh put it in the cache: the agent's process.execve path runs on it. */
function node24(): string | undefined {
  // The runtime running these tests, when it is 24 (as in CI), else the one scripts/node-lts.sh caches.
  if (process.versions.node.startsWith('24.')) return process.execPath;
  const dir = join(process.env.COFRE_CACHE_DIR ?? join(homedir(), '.cache/cofre'), 'node');
  if (!existsSync(dir)) return undefined;
  const v24 = readdirSync(dir)
    .filter((v) => v.startsWith('24.'))
    .sort()
    .pop();
  return v24 ? join(dir, v24, 'bin/node') : undefined;
}

describe('cofre agent (in-pod agent) on a real control plane', () => {
  let world: AgentWorld;
  const outputs: string[] = [];
  const secrets = new Set<string>();
  const run = async (agent: RunningAgent) => {
    const exit = await agent.exited;
    outputs.push(agent.output());
    return exit;
  };
  const kvWrite = async (path: string, data: Record<string, string>) => {
    for (const v of Object.values(data)) secrets.add(v);
    await writeOk(world.srv.api, `secret/data/${path}`, { data });
  };
  const config = (filesDir: string, items: object[], extra: object = {}) => ({
    auth: { mount: 'kubernetes', role: 'app', token_path: world.tokenFile },
    files_dir: filesDir,
    items,
    ...extra,
  });
  const tokenLeases = async (): Promise<string[]> => {
    const res = await world.srv.api.call('LIST', 'sys/leases/lookup/auth/kubernetes/login/');
    return res.status === 404 ? [] : (res.body.data.keys as string[]);
  };

  before(async () => {
    world = await startAgentWorld('pod-agent', POLICY);
    await kvWrite('app/db', DB);
    await kvWrite('app/api', API);
    await kvWrite('app/registry', REGISTRY);
  });
  after(async () => {
    await world?.stop();
    if (world) rmSync(world.dir, { recursive: true, force: true });
  });

  it('-init renders every file item once with its mode and format, and exits 0', async () => {
    const dir = freshDir(world, 'init');
    const status = join(dir, 'status.json');
    const tokensBefore = await tokenLeases();
    const agent = spawnAgent(
      ['-init', `-status-file=${status}`],
      agentEnv(
        world,
        config(join(dir, 'secrets'), [
          {
            name: 'db',
            kv: 'secret/app/db',
            keys: ['password'],
            file: { path: 'db.json', mode: '0400', format: 'json' },
          },
          {
            name: 'conf',
            kv: 'secret/app/db',
            file: {
              path: 'conf/db.conf',
              mode: '0440',
              format: 'template',
              template: 'user={{ .Data.username }} password={{ .Data.password | b64enc }}\n',
            },
          },
          { name: 'dotenv', kv: 'secret/app/db', file: { path: 'db.env', mode: '0600', format: 'env' } },
          { name: 'key', kv: 'secret/app/api', keys: ['key'], file: { path: 'api.key', format: 'raw' } },
          {
            name: 'pull',
            kv: 'secret/app/registry',
            file: { path: 'pull.json', mode: '0444', format: 'template', template: '{{ dockerconfigjson .Data }}' },
          },
          { name: 'api', kv: 'secret/app/api', env: { API_KEY: 'key' } },
        ]),
      ),
    );
    const exit = await run(agent);
    assert.equal(exit.code, 0, agent.output());
    assert.deepEqual(await tokenLeases(), tokensBefore, 'with no lease depending on it, the init token is revoked');
    const secretsDir = join(dir, 'secrets');
    assert.deepEqual(JSON.parse(readFileSync(join(secretsDir, 'db.json'), 'utf8')), { password: DB.password });
    assert.equal(mode(join(secretsDir, 'db.json')), 0o400);
    assert.equal(
      readFileSync(join(secretsDir, 'conf/db.conf'), 'utf8'),
      `user=${DB.username} password=${Buffer.from(DB.password).toString('base64')}\n`,
    );
    assert.equal(mode(join(secretsDir, 'conf/db.conf')), 0o440);
    assert.equal(
      readFileSync(join(secretsDir, 'db.env'), 'utf8'),
      `username=${DB.username}\npassword=${DB.password}\n`,
    );
    assert.equal(mode(join(secretsDir, 'db.env')), 0o600);
    assert.equal(readFileSync(join(secretsDir, 'api.key'), 'utf8'), API.key);
    assert.equal(mode(join(secretsDir, 'api.key')), 0o400, 'the default mode is 0400');
    const pull = JSON.parse(readFileSync(join(secretsDir, 'pull.json'), 'utf8'));
    assert.deepEqual(pull, {
      auths: {
        [REGISTRY.registry]: {
          username: REGISTRY.username,
          password: REGISTRY.password,
          auth: Buffer.from(`${REGISTRY.username}:${REGISTRY.password}`).toString('base64'),
        },
      },
    });
    assert.deepEqual(
      readdirSync(secretsDir).sort(),
      ['api.key', 'conf', 'db.env', 'db.json', 'pull.json'],
      'no env item and no temporary file is left in the directory',
    );
    const state = JSON.parse(readFileSync(status, 'utf8'));
    assert.equal(state.items.find((i: { name: string }) => i.name === 'db').renders, 1);
    assert.equal(state.token.logins, 1);
  });

  it('as a sidecar, re-renders a file within 2 s of a KV write, signals the app, and revokes its token on SIGTERM', async () => {
    const dir = freshDir(world, 'sidecar');
    // The "application": a process that says when it gets SIGHUP, found through its pid file.
    const app = spawn(
      process.execPath,
      ['-e', "process.on('SIGHUP', () => console.log('reloaded')); setInterval(() => {}, 1000); console.log('up')"],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let appOut = '';
    app.stdout!.on('data', (d) => (appOut += d));
    await until('the app is up', async () => (appOut.includes('up') ? true : undefined), 10_000);
    writeFileSync(join(dir, 'app.pid'), String(app.pid));
    const before = await tokenLeases();
    const status = join(dir, 'status.json');
    const file = join(dir, 'secrets', 'db.json');
    const agent = spawnAgent(
      [`-status-file=${status}`],
      agentEnv(
        world,
        config(
          join(dir, 'secrets'),
          [{ name: 'db', kv: 'secret/app/db', file: { path: 'db.json', mode: '0400', format: 'json' } }],
          { on_change: { signal: 'SIGHUP', pid_file: join(dir, 'app.pid') } },
        ),
      ),
    );
    try {
      await until(
        'the agent follows the change stream',
        async () => (existsSync(status) && JSON.parse(readFileSync(status, 'utf8')).changeStreamConnected) || undefined,
        20_000,
      );
      assert.equal(JSON.parse(readFileSync(file, 'utf8')).password, DB.password);
      assert.equal((await tokenLeases()).length, before.length + 1, 'the agent holds one token');

      const rotated = { ...DB, password: 'rotated-pass-0f9e2a' };
      const written = Date.now();
      await kvWrite('app/db', rotated);
      await until(
        'the file holds the rotated password',
        async () => (readFileSync(file, 'utf8').includes(rotated.password) ? true : undefined),
        2_000,
      );
      const latency = Date.now() - written;
      assert.ok(latency < 2_000, `re-rendered after ${latency} ms`);
      assert.equal(mode(file), 0o400);
      await until('the app got SIGHUP', async () => (appOut.includes('reloaded') ? true : undefined), 5_000);
      const state = JSON.parse(readFileSync(status, 'utf8'));
      assert.equal(state.signals, 1);
      assert.equal(state.items[0].renders, 2);

      agent.child.kill('SIGTERM');
      const exit = await run(agent);
      assert.equal(exit.code, 0, agent.output());
      assert.deepEqual(await tokenLeases(), before, 'the agent revoked its token on SIGTERM');
      assert.match(agent.output(), /revoked the token/);
    } finally {
      agent.child.kill('SIGKILL');
      app.kill('SIGKILL');
    }
  });

  it('keeps its token alive with a short TTL: renews it, logs in again before its max TTL, and still follows changes', async () => {
    await writeOk(world.srv.api, 'auth/kubernetes/role/short', {
      bound_service_account_names: ['web'],
      bound_service_account_namespaces: ['apps'],
      audience: 'cofre',
      token_policies: ['app'],
      token_ttl: 2,
      token_max_ttl: 5,
    });
    const dir = freshDir(world, 'short-token');
    const status = join(dir, 'status.json');
    const file = join(dir, 'secrets', 'api.json');
    const cfg = config(join(dir, 'secrets'), [{ name: 'api', kv: 'secret/app/api', file: { path: 'api.json' } }]);
    cfg.auth.role = 'short';
    const agent = spawnAgent([`-status-file=${status}`], agentEnv(world, cfg));
    try {
      const state = () => (existsSync(status) ? JSON.parse(readFileSync(status, 'utf8')) : undefined);
      await until(
        'a renewal and a second login',
        async () => {
          const s = state();
          return s && s.token.renewals >= 1 && s.token.logins >= 2 ? true : undefined;
        },
        15_000,
      ).catch((err: Error) => assert.fail(`${err.message}: ${agent.output()}`));
      // The first token is past its max TTL: the change stream now runs on the new one.
      const rotated = { ...API, key: 'api-key-after-relogin-44d1' };
      await kvWrite('app/api', rotated);
      await until(
        'the file holds the new key',
        async () => (readFileSync(file, 'utf8').includes(rotated.key) ? true : undefined),
        2_000,
      );
      agent.child.kill('SIGTERM');
      assert.equal((await run(agent)).code, 0, agent.output());
    } finally {
      agent.child.kill('SIGKILL');
      await kvWrite('app/api', API);
    }
  });

  it('logs in again when its token is revoked under it, and keeps following changes', async () => {
    const dir = freshDir(world, 'revoked');
    const status = join(dir, 'status.json');
    const file = join(dir, 'secrets', 'api.json');
    const agent = spawnAgent(
      [`-status-file=${status}`],
      agentEnv(
        world,
        config(join(dir, 'secrets'), [{ name: 'api', kv: 'secret/app/api', file: { path: 'api.json' } }]),
      ),
    );
    const state = () => (existsSync(status) ? JSON.parse(readFileSync(status, 'utf8')) : undefined);
    try {
      await until(
        'the agent follows the change stream',
        async () => state()?.changeStreamConnected || undefined,
        20_000,
      );
      // Every token the Kubernetes auth method issued, the agent's included.
      const revoked = await world.srv.api.call('PUT', 'sys/leases/revoke-prefix/auth/kubernetes/login');
      assert.ok(revoked.status < 300, revoked.text);
      // The agent learns of it when it next uses the token: the change stream's next event ends the stream.
      const rotated = { ...API, key: 'api-key-after-revocation-5be0' };
      await kvWrite('app/api', rotated);
      await until(
        'the file holds the new key',
        async () => (readFileSync(file, 'utf8').includes(rotated.key) ? true : undefined),
        5_000,
      ).catch((err: Error) => assert.fail(`${err.message}: ${agent.output()}`));
      await until('the state file shows it', async () => (state()?.token.logins >= 2 ? true : undefined), 2_000);
      assert.equal(state()?.token.logins, 2, 'one new login, not one per failed request');
      agent.child.kill('SIGTERM');
      assert.equal((await run(agent)).code, 0, agent.output());
    } finally {
      agent.child.kill('SIGKILL');
      await kvWrite('app/api', API);
    }
  });

  it('on_change signals processes by name, or exits without revoking', async () => {
    const dir = freshDir(world, 'by-name');
    // A process with a name of its own (its comm), so no other process on the machine can match it.
    const name = `cfapp${Math.random().toString(16).slice(2, 8)}`;
    copyFileSync('/bin/sleep', join(dir, name));
    chmodSync(join(dir, name), 0o755);
    const app = spawn(join(dir, name), ['300'], { stdio: 'ignore' });
    const appExit = new Promise<NodeJS.Signals | null>((resolve) => app.on('exit', (_code, signal) => resolve(signal)));
    const status = join(dir, 'status.json');
    const connected = async () =>
      (existsSync(status) && JSON.parse(readFileSync(status, 'utf8')).changeStreamConnected) || undefined;
    const items = [{ name: 'api', kv: 'secret/app/api', file: { path: 'api.json' } }];
    const byName = spawnAgent(
      [`-status-file=${status}`],
      agentEnv(world, config(join(dir, 'a'), items, { on_change: { signal: 'SIGUSR1', process_name: name } })),
    );
    try {
      await until('the agent follows the change stream', connected, 20_000);
      await kvWrite('app/api', { ...API, key: 'api-key-by-name-71b3' });
      assert.equal(await appExit, 'SIGUSR1', 'the process named on_change.process_name got the signal');
      byName.child.kill('SIGTERM');
      assert.equal((await run(byName)).code, 0);

      rmSync(status);
      const exiting = spawnAgent(
        [`-status-file=${status}`],
        agentEnv(world, config(join(dir, 'b'), items, { on_change: { exit: true } })),
      );
      await until('the second agent follows the change stream', connected, 20_000);
      await kvWrite('app/api', { ...API, key: 'api-key-exit-0c2e' });
      const exit = await run(exiting);
      assert.equal(exit.code, 0, exiting.output());
      assert.match(exiting.output(), /"reason":"on_change.exit"/);
      assert.doesNotMatch(exiting.output(), /revoked the token/);
      assert.ok(readFileSync(join(dir, 'b', 'api.json'), 'utf8').includes('api-key-exit-0c2e'), 'it rendered first');
    } finally {
      byName.child.kill('SIGKILL');
      app.kill('SIGKILL');
      await kvWrite('app/api', API);
    }
  });

  it('exec mode: the command sees the value; no parent (the agent, without execve) holds it in its environ', async () => {
    const dir = freshDir(world, 'exec');
    const tokensBefore = await tokenLeases();
    const agent = spawnAgent(
      [
        'exec',
        '--',
        'sh',
        '-c',
        'printf %s "$API_KEY" > "$OUT/child"; cat /proc/$PPID/environ > "$OUT/parent"; echo $PPID > "$OUT/ppid"; exit 7',
      ],
      {
        ...agentEnv(
          world,
          config(join(dir, 'secrets'), [{ name: 'api', kv: 'secret/app/api', env: { API_KEY: 'key' } }]),
        ),
        OUT: dir,
      },
    );
    const exit = await run(agent);
    assert.equal(exit.code, 7, `the agent exits with the command's code: ${agent.output()}`);
    assert.deepEqual(
      await tokenLeases(),
      tokensBefore,
      'no lease depends on the token: it was revoked before the exec',
    );
    assert.equal(readFileSync(join(dir, 'child'), 'utf8'), API.key);
    const parentEnviron = readFileSync(join(dir, 'parent'), 'utf8');
    const ppid = Number(readFileSync(join(dir, 'ppid'), 'utf8'));
    if (typeof (process as { execve?: unknown }).execve === 'function') {
      // The agent became the command (the next test looks closer): its parent is this test, no agent is left.
      assert.equal(ppid, process.pid, 'with execve the command replaces the agent');
    } else {
      assert.equal(ppid, agent.child.pid, 'the agent is the parent');
      assert.ok(parentEnviron.includes('COFRE_AGENT_CONFIG='), 'the parent environ was read');
    }
    assert.ok(!parentEnviron.includes(API.key), "the value is not in the parent's /proc/<pid>/environ");
    assert.equal(readdirSync(dir).includes('secrets'), false, 'exec mode writes no files');
  });

  it('exec mode on Node.js 24: process.execve replaces the agent with the command', async () => {
    const node = node24();
    // Not a skip: the execve path is what runs in pods, so a run that cannot test it fails and says what it needs.
    assert.ok(node, 'needs Node.js 24: run the tests on it, or `bash scripts/node-lts.sh 24` to cache one');
    const dir = freshDir(world, 'execve');
    const agent = spawnAgent(
      [
        'exec',
        '--',
        'sh',
        '-c',
        'printf %s "$API_KEY" > "$OUT/child"; echo $$ > "$OUT/pid"; cat /proc/$PPID/environ > "$OUT/parent"',
      ],
      {
        ...agentEnv(
          world,
          config(join(dir, 'secrets'), [{ name: 'api', kv: 'secret/app/api', env: { API_KEY: 'key' } }]),
        ),
        OUT: dir,
      },
      { node },
    );
    const exit = await run(agent);
    assert.equal(exit.code, 0, agent.output());
    assert.equal(readFileSync(join(dir, 'child'), 'utf8'), API.key);
    assert.equal(Number(readFileSync(join(dir, 'pid'), 'utf8')), agent.child.pid, 'the command runs as the agent pid');
    assert.ok(!readFileSync(join(dir, 'parent'), 'utf8').includes(API.key));
    assert.doesNotMatch(agent.output(), /ExperimentalWarning/, "execve's warning does not reach the app's stderr");
  });

  it('-init installs the exec runtime; EXEC_PREFIX runs in a chroot holding only busybox and /cofre/bin', async () => {
    const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((f) => existsSync(f));
    const chroot = ['/usr/sbin/chroot', '/usr/bin/chroot', '/sbin/chroot'].find((f) => existsSync(f));
    // Not a skip: .ci/run installs busybox-static and runs as root; elsewhere the failure says what is missing.
    assert.ok(
      process.getuid?.() === 0 && busybox && chroot,
      'needs root, chroot and busybox-static (apt-get install busybox-static)',
    );
    // The runtime is the installing agent's own Node.js: this one, and Node.js 24 (process.execve) when cached.
    const runtimes = [...new Set([process.execPath, node24()])].filter((n): n is string => n !== undefined);
    for (const [i, node] of runtimes.entries()) {
      const root = freshDir(world, `chroot-${i}`);
      const items = [{ name: 'api', kv: 'secret/app/api', env: { API_KEY: 'key' } }];
      const init = spawnAgent(
        ['-init'],
        agentEnv(world, { ...config(join(root, 'cofre/secrets'), items), install_to: join(root, 'cofre/bin') }),
        { node },
      );
      const exit = await run(init);
      assert.equal(exit.code, 0, init.output());
      assert.ok(existsSync(join(root, 'cofre/bin/ld.so')) && existsSync(join(root, 'cofre/bin/app/cofre.js')));
      assert.equal(existsSync(join(root, 'cofre/bin/.staging')), false, 'nothing is left staged');
      // The "image": busybox and the projected token where the webhook mounts it, nothing else.
      for (const d of ['bin', 'tmp', 'var/run/secrets/cofre']) mkdirSync(join(root, d), { recursive: true });
      copyFileSync(busybox, join(root, 'bin/busybox'));
      copyFileSync(world.tokenFile, join(root, 'var/run/secrets/cofre/token'));
      const inPod = config('/cofre/secrets', items);
      inPod.auth.token_path = '/var/run/secrets/cofre/token';
      // Asynchronously: the Cofre server it logs in to runs in this process.
      const child = spawn(
        chroot,
        [root, ...EXEC_PREFIX, '/bin/busybox', 'sh', '-c', 'printf %s "$API_KEY" > /tmp/child; exit 3'],
        {
          env: { COFRE_ADDR: world.srv.url, COFRE_AGENT_CONFIG: JSON.stringify(inPod) },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      const code = await new Promise<number | null>((resolve, reject) => {
        child.on('error', reject);
        child.on('exit', resolve);
      });
      outputs.push(out);
      assert.equal(code, 3, `the chroot run with ${node} ended with ${code}: ${out}`);
      assert.equal(readFileSync(join(root, 'tmp/child'), 'utf8'), API.key);
    }
  });

  it('refuses a bad configuration with a message naming the item', async () => {
    const dir = freshDir(world, 'bad');
    const tokensBefore = await tokenLeases();
    const cases: [object[], RegExp][] = [
      [
        [{ name: 'both', kv: 'secret/app/db', path: 'x/y', file: { path: 'a' } }],
        /item "both": give exactly one of "kv" and "path"/,
      ],
      [[{ name: 'mode', kv: 'secret/app/db', file: { path: 'a', mode: '999' } }], /item "mode": file.mode "999"/],
      [[{ name: 'escape', kv: 'secret/app/db', file: { path: '../a' } }], /item "escape": file.path "..\/a"/],
      [[{ name: 'odd', kv: 'secret/app/db', file: { path: 'a' }, color: 'red' }], /item "odd": unknown field "color"/],
      [
        [{ name: 'tpl', kv: 'secret/app/db', file: { path: 'a', format: 'template', template: '{{ .Nope }}' } }],
        /item "tpl": file.template: unsupported action/,
      ],
      [
        [{ name: 'denied', kv: 'secret/other/x', file: { path: 'a' } }],
        /item "denied": reading secret\/other\/x failed \(permission denied\)/,
      ],
      [
        [{ name: 'missing', kv: 'secret/app/db', keys: ['nope'], file: { path: 'a' } }],
        /item "missing": secret\/app\/db has no field "nope"/,
      ],
      [
        [{ name: 'raw', kv: 'secret/app/db', file: { path: 'a', format: 'raw' } }],
        /item "raw": format "raw" writes exactly one key/,
      ],
    ];
    for (const [items, message] of cases) {
      const agent = spawnAgent(['-init'], agentEnv(world, config(join(dir, 'secrets'), items)));
      const exit = await run(agent);
      assert.equal(exit.code, 1, agent.output());
      assert.match(agent.output(), message);
      assert.doesNotMatch(agent.output(), /logging in again/, 'a policy denial needs no new login');
    }
    assert.deepEqual(
      existsSync(join(dir, 'secrets')) ? readdirSync(join(dir, 'secrets')) : [],
      [],
      'nothing was written',
    );
    assert.deepEqual(await tokenLeases(), tokensBefore, 'an init container that fails revokes its token');
    const noAddress = spawnAgent(['-init'], { COFRE_AGENT_CONFIG: JSON.stringify(config(dir, [])) });
    assert.equal((await run(noAddress)).code, 1);
    assert.match(noAddress.output(), /COFRE_ADDR is not set/);
  });

  it("never writes a value, a service-account token or a Cofre token in the agent's output", () => {
    assert.ok(outputs.length >= 10);
    const all = outputs.join('\n');
    for (const value of secrets) assert.ok(!all.includes(value), `a value appears in the agent output`);
    for (const jwt of world.jwts) assert.ok(!all.includes(jwt), 'the service-account token appears in the output');
    assert.doesNotMatch(all, /cvs\.[A-Za-z0-9]/, 'a Cofre token appears in the output');
  });
});
