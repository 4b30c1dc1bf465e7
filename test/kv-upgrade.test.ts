import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import {
  apiClient,
  freePort,
  runCli,
  spawnDevServer,
  startServer,
  tempDir,
  writeOk,
  type Api,
  type InProcessServer,
} from './support.js';

/**
 * Upgrading a KV version 1 mount to version 2 in place (Vault's `kv enable-versioning`, a tune to
 * options.version=2): every secret becomes version 1 of a versioned secret, nothing is lost to writes racing the
 * upgrade, and a crash in the middle leaves either the old mount or the new one, never half of each.
 */

const UPGRADING = 'Upgrading from non-versioned to versioned data.';

/** Paths with odd characters, and paths named like the version 2 storage layout (config, metadata/, versions/). */
const ODD = [
  'config',
  'metadata/inner',
  'versions/x/1',
  'data/y',
  'sp ace/and tab\tname',
  'ünï/çødé/日本',
  'a+b=c&d',
  'dot.in.name',
  'deep/a/b/c/d/e/f/g',
  'percent%41',
];

/** A URL path from secret path segments (each encoded, so "/" stays a separator). */
const url = (path: string): string => path.split('/').map(encodeURIComponent).join('/');

function secretsFor(count: number): Map<string, Record<string, unknown>> {
  const secrets = new Map<string, Record<string, unknown>>();
  for (const path of ODD) secrets.set(path, { value: `odd ${path}`, nested: { n: 1, list: ['ü', 2] } });
  for (let i = 0; i < count; i++) secrets.set(`app${i % 7}/svc-${i}`, { user: `u${i}`, password: `p-${i}-ñ` });
  return secrets;
}

async function writeV1(api: Api, mount: string, secrets: Map<string, Record<string, unknown>>): Promise<void> {
  const entries = [...secrets];
  for (let i = 0; i < entries.length; i += 50) {
    await Promise.all(entries.slice(i, i + 50).map(([path, data]) => writeOk(api, `${mount}/${url(path)}`, data)));
  }
}

/** Every secret reads back from the version 2 API as version 1 with its data. */
async function assertV2(api: Api, mount: string, secrets: Map<string, Record<string, unknown>>): Promise<void> {
  const wrong: string[] = [];
  const entries = [...secrets];
  for (let i = 0; i < entries.length; i += 50) {
    await Promise.all(
      entries.slice(i, i + 50).map(async ([path, data]) => {
        const res = await api.call('GET', `${mount}/data/${url(path)}`);
        if (res.status !== 200 || JSON.stringify(res.body.data.data) !== JSON.stringify(data)) wrong.push(path);
        else if (res.body.data.metadata.version !== 1)
          wrong.push(`${path} (version ${res.body.data.metadata.version})`);
      }),
    );
  }
  assert.deepEqual(wrong, [], `${wrong.length} secrets not upgraded`);
}

async function assertV1(api: Api, mount: string, secrets: Map<string, Record<string, unknown>>): Promise<void> {
  const wrong: string[] = [];
  for (const [path, data] of secrets) {
    const res = await api.call('GET', `${mount}/${url(path)}`);
    if (res.status !== 200 || JSON.stringify(res.body.data) !== JSON.stringify(data)) wrong.push(path);
  }
  assert.deepEqual(wrong, [], `${wrong.length} version 1 secrets changed`);
}

async function mountVersion(api: Api, mount: string): Promise<string | undefined> {
  const res = await api.call('GET', `sys/internal/ui/mounts/${mount}`);
  assert.equal(res.status, 200, res.text);
  return res.body.data.options?.version;
}

const tune = (api: Api, mount: string, version: string) =>
  api.call('POST', `sys/mounts/${mount}/tune`, { body: { options: { version } } });

describe('KV upgrade from version 1 to 2', () => {
  let server: InProcessServer;
  let api: Api;
  before(async () => {
    server = await startServer();
    api = server.api;
  });
  after(() => server.stop());

  it('keeps every secret, nested and oddly named ones too, each as version 1', async () => {
    await writeOk(api, 'sys/mounts/old', { type: 'kv' });
    const secrets = secretsFor(400);
    await writeV1(api, 'old', secrets);

    const res = await tune(api, 'old', '2');
    assert.equal(res.status, 200, res.text);
    assert.match(res.body.warnings[0], /^Upgrading mount from version 1 to version 2\. This mount will be unavailable/);
    assert.equal(await mountVersion(api, 'old'), '2');
    const mount = await api.call('GET', 'sys/mounts/old');
    assert.equal(mount.body.data.options.version, '2');

    await assertV2(api, 'old', secrets);
    const meta = await api.call('GET', `old/metadata/${url('ünï/çødé/日本')}`);
    assert.equal(meta.status, 200);
    assert.equal(meta.body.data.current_version, 1);
    assert.deepEqual(Object.keys(meta.body.data.versions), ['1']);
    // Listing is the version 2 listing, of exactly the secrets written (no storage layout keys leak into it).
    const top = await api.call('LIST', 'old/metadata/');
    assert.deepEqual(
      top.body.data.keys,
      ['a+b=c&d', 'app0/', 'app1/', 'app2/', 'app3/', 'app4/', 'app5/', 'app6/', 'config', 'data/', 'deep/'].concat([
        'dot.in.name',
        'metadata/',
        'percent%41',
        'sp ace/',
        'versions/',
        'ünï/',
      ]),
    );
    const nested = await api.call('LIST', 'old/metadata/versions/x/');
    assert.deepEqual(nested.body.data.keys, ['1']);
    // The old version 1 paths are gone: the mount now answers as version 2 does.
    const v1Read = await api.call('GET', 'old/app1/svc-1');
    assert.equal(v1Read.status, 404);

    // And it is a working version 2 mount: a new write is version 2, check-and-set included.
    const next = await api.call('POST', 'old/data/app1/svc-1', { body: { options: { cas: 1 }, data: { user: 'x' } } });
    assert.equal(next.status, 200, next.text);
    assert.equal(next.body.data.version, 2);
    const v1again = await api.call('GET', 'old/data/app1/svc-1?version=1');
    assert.deepEqual(v1again.body.data.data, { user: 'u1', password: 'p-1-ñ' });
  });

  it('refuses a downgrade and versions other than 1 and 2, as Vault does', async () => {
    await writeOk(api, 'sys/mounts/v2', { type: 'kv-v2' });
    const down = await tune(api, 'v2', '1');
    assert.equal(down.status, 400);
    assert.deepEqual(down.body.errors, ['cannot downgrade mount from version 2']);
    for (const version of ['3', '0', '', 'two']) {
      const bad = await tune(api, 'v2', version);
      assert.equal(bad.status, 400, `version "${version}"`);
    }
    assert.equal(await mountVersion(api, 'v2'), '2');
    // The same version again is no change and no upgrade.
    const same = await tune(api, 'v2', '2');
    assert.equal(same.status, 204);
    await writeOk(api, 'sys/mounts/plain', { type: 'kv' });
    const one = await tune(api, 'plain', '1');
    assert.equal(one.status, 204);
    await writeOk(api, 'plain/still', { a: 'b' });
    assert.equal((await api.call('GET', 'plain/still')).body.data.a, 'b');
  });

  it('an empty mount upgrades too, and other options change without an upgrade', async () => {
    await writeOk(api, 'sys/mounts/empty', { type: 'kv' });
    const other = await api.call('POST', 'sys/mounts/empty/tune', { body: { options: { custom: 'x' } } });
    assert.equal(other.status, 204);
    assert.equal((await api.call('GET', 'sys/mounts/empty')).body.data.options.custom, 'x');
    const res = await tune(api, 'empty', ' 2 ');
    assert.equal(res.status, 200);
    assert.equal(await mountVersion(api, 'empty'), '2');
    assert.equal((await api.call('LIST', 'empty/metadata/')).status, 404);
    assert.equal((await api.call('POST', 'empty/data/a', { body: { data: { b: 1 } } })).body.data.version, 1);
  });

  it('writes racing the upgrade are refused with a retryable error or land in version 2: none is lost', async () => {
    await writeOk(api, 'sys/mounts/race', { type: 'kv' });
    await writeV1(api, 'race', secretsFor(1500));
    const acknowledged = new Map<string, string>();
    let refused = 0;
    let upgraded = false;
    let stop = false;
    const writer = async (w: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const key = `racer/w${w}-${i}`;
        const value = `v${w}-${i}`;
        // Written the version 1 way until the mount answers as version 2, as a client that knows about the tune.
        const v1 = !upgraded;
        const res = v1
          ? await api.call('PUT', `race/${key}`, { body: { value } })
          : await api.call('POST', `race/data/${key}`, { body: { data: { value } } });
        if (res.status === 204 || res.status === 200) acknowledged.set(key, value);
        else if (res.status === 400 && String(res.body.errors?.[0]).startsWith(UPGRADING)) refused += 1;
        else if (res.status === 404 && v1)
          upgraded = true; // a version 1 write reaching the new mount: refused
        else throw new Error(`unexpected answer ${res.status} ${res.text}`);
      }
    };
    const writers = Array.from({ length: 8 }, (_, w) => writer(w));
    while (acknowledged.size < 40) await new Promise((r) => setTimeout(r, 5));
    const res = await tune(api, 'race', '2');
    assert.equal(res.status, 200, res.text);
    upgraded = true;
    await new Promise((r) => setTimeout(r, 100));
    stop = true;
    await Promise.all(writers);

    const lost: string[] = [];
    for (const [key, value] of acknowledged) {
      const read = await api.call('GET', `race/data/${key}`);
      if (read.status !== 200 || read.body.data.data.value !== value) lost.push(key);
    }
    assert.deepEqual(lost, [], `${lost.length} of ${acknowledged.size} acknowledged writes lost (${refused} refused)`);
    assert.ok(acknowledged.size > 40);
    await assertV2(api, 'race', secretsFor(1500));
  });

  it('two tunes at once upgrade once: the second is refused while the first runs, or finds version 2', async () => {
    await writeOk(api, 'sys/mounts/twice', { type: 'kv' });
    const secrets = secretsFor(300);
    await writeV1(api, 'twice', secrets);
    const [a, b] = await Promise.all([tune(api, 'twice', '2'), tune(api, 'twice', '2')]);
    const statuses = [a.status, b.status].sort();
    assert.ok(statuses[0] === 200 && (statuses[1] === 204 || statuses[1] === 400), `statuses ${statuses.join(',')}`);
    await assertV2(api, 'twice', secrets);
  });

  it('a token that may not tune the mount cannot upgrade it', async () => {
    await writeOk(api, 'sys/mounts/guarded', { type: 'kv' });
    await writeOk(api, 'guarded/s', { a: 'b' });
    await writeOk(api, 'sys/policies/acl/guarded-reader', {
      policy:
        'path "guarded/*" { capabilities = ["read", "update", "create"] }\npath "sys/mounts/guarded/tune" { capabilities = ["read"] }',
    });
    const token = (await api.call('POST', 'auth/token/create', { body: { policies: ['guarded-reader'] } })).body.auth
      .client_token as string;
    const res = await api.call('POST', 'sys/mounts/guarded/tune', { token, body: { options: { version: '2' } } });
    assert.equal(res.status, 403);
    assert.equal(await mountVersion(api, 'guarded'), undefined);
    assert.equal((await api.call('GET', 'guarded/s')).body.data.a, 'b');
  });

  it('cofre kv enable-versioning and cofre secrets enable-versioning upgrade a mount', async () => {
    await writeOk(api, 'sys/mounts/cli1', { type: 'kv' });
    await writeOk(api, 'sys/mounts/cli2', { type: 'kv' });
    await writeOk(api, 'cli1/a', { k: 'v1' });
    await writeOk(api, 'cli2/b', { k: 'v2' });
    const one = await runCli(server.url, server.rootToken, 'kv', 'enable-versioning', 'cli1');
    assert.equal(one.code, 0, one.out);
    assert.equal(one.out, 'Success! Tuned the secrets engine at: cli1/\n');
    const two = await runCli(server.url, server.rootToken, 'secrets', 'enable-versioning', 'cli2/');
    assert.equal(two.code, 0, two.out);
    // `kv get` finds version 2 through sys/internal/ui/mounts and reads data/.
    const got = await runCli(server.url, server.rootToken, 'kv', 'get', '-format=json', 'cli2/b');
    assert.equal(got.code, 0, got.out);
    assert.deepEqual(JSON.parse(got.out).data.data, { k: 'v2' });
    assert.equal(JSON.parse(got.out).data.metadata.version, 1);
    const again = await runCli(server.url, server.rootToken, 'kv', 'get', '-field=k', 'cli1/a');
    assert.equal(again.out.trim(), 'v1');
  });
});

describe('KV upgrade and SIGKILL', () => {
  it('a server killed in the middle of an upgrade restarts with the old mount or the new one, never half', async () => {
    const dir = tempDir('kv-upgrade-crash');
    const port = await freePort();
    const secrets = secretsFor(2000);
    let server: Awaited<ReturnType<typeof spawnDevServer>> | undefined;
    try {
      server = await spawnDevServer(dir, port, 'root');
      let api = apiClient(server.url, 'root');
      const mounts = ['timed', 'k0', 'k1', 'k2', 'k3'];
      for (const mount of mounts) {
        await writeOk(api, `sys/mounts/${mount}`, { type: 'kv' });
        await writeV1(api, mount, secrets);
      }
      // How long an upgrade of this size takes here, so the kills below fall before, during and after the commit.
      const started = Date.now();
      assert.equal((await tune(api, 'timed', '2')).status, 200);
      const took = Date.now() - started;
      await assertV2(api, 'timed', secrets);
      const outcomes: string[] = [];
      for (const [i, mount] of mounts.slice(1).entries()) {
        const pending = tune(api, mount, '2').catch(() => undefined);
        // The last one is killed once the tune was answered: an acknowledged upgrade must survive the crash.
        if (i === 3) assert.equal((await pending)?.status, 200);
        else await new Promise((r) => setTimeout(r, [1, took * 0.5, took * 0.95][i]));
        const killed = server.child;
        const exited = new Promise((r) => killed.once('exit', r));
        killed.kill('SIGKILL');
        await exited;
        await pending;
        server = await spawnDevServer(dir, port, 'root');
        api = apiClient(server.url, 'root');
        const version = await mountVersion(api, mount);
        outcomes.push(version ?? '1');
        if (version === '2') await assertV2(api, mount, secrets);
        else await assertV1(api, mount, secrets);
        // Either way the mount works: an upgrade after the restart completes.
        if (version !== '2') assert.equal((await tune(api, mount, '2')).status, 200);
        await assertV2(api, mount, secrets);
      }
      assert.equal(outcomes[0], '1', 'killed 1 ms after the tune was sent, the upgrade cannot have committed');
      assert.equal(outcomes[3], '2', 'the upgrade was acknowledged before the kill');
      assert.equal(outcomes.length, 4);
    } finally {
      server?.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
