import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { CoordinationV1Api, CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { installCrds } from '../scripts/cofre-crds.js';
import { startCluster, type TestCluster } from '../scripts/test-cluster.js';
import { freePort } from './support.js';

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `cofre operator kubernetes` as the Helm chart runs it: leader election, probes and metrics on one port. */
describe('cofre operator kubernetes (the process)', () => {
  let cluster: TestCluster;
  let kc: KubeConfig;
  before(async () => {
    cluster = await startCluster({ name: 'operator-cmd', controllerManager: false });
    kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    await installCrds(kc);
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: 'cofre-system' } } });
  });
  after(() => cluster?.stop());

  it('takes the Lease, serves /healthz, /readyz and /metrics, and gives the Lease up on SIGTERM', async () => {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/main.ts',
        'operator',
        'kubernetes',
        '--kubeconfig',
        cluster.kubeconfigPath,
        '--leader-elect=true',
        '--leader-election-namespace',
        'cofre-system',
        '--leader-election-id',
        'cofre-operator',
        '--metrics-bind-address',
        `127.0.0.1:${port}`,
        '--log-level',
        'warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, POD_NAME: 'operator-0' } },
    );
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const url = `http://127.0.0.1:${port}`;
      await until('healthz', async () => (await fetch(`${url}/healthz`)).status === 200);
      await until('readyz', async () => (await fetch(`${url}/readyz`)).status === 200);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      assert.match(metrics, /cofre_operator_/);
      const leases = kc.makeApiClient(CoordinationV1Api);
      const lease = await until('lease holder', async () => {
        const l = await leases.readNamespacedLease({ name: 'cofre-operator', namespace: 'cofre-system' });
        return l.spec?.holderIdentity?.startsWith('operator-0_') ? l : undefined;
      });
      assert.equal(lease.spec?.leaseDurationSeconds, 15);
      child.kill('SIGTERM');
      assert.equal(await exited, 0, out);
      const released = await leases.readNamespacedLease({ name: 'cofre-operator', namespace: 'cofre-system' });
      assert.equal(released.spec?.holderIdentity ?? '', '', 'the Lease is given up on shutdown');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('logs a failed sync at error level, binds metrics where the environment says, and loopback by default', async () => {
    const help = spawnSync(process.execPath, [
      '--import',
      'tsx',
      'src/cli/main.ts',
      'operator',
      'kubernetes',
      '--help',
    ]);
    const usage = help.stdout.toString().replace(/\s+/g, ' ');
    assert.match(usage, /default: "127\.0\.0\.1:9090", env: COFRE_OPERATOR_METRICS_BIND_ADDRESS/);
    assert.match(usage, /default: 16, env: COFRE_OPERATOR_CONCURRENCY/);

    const custom = kc.makeApiClient(CustomObjectsApi);
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: 'logs' } } });
    await custom.createNamespacedCustomObject({
      group: 'cofre.dev',
      version: 'v1alpha1',
      namespace: 'logs',
      plural: 'cofresecrets',
      body: {
        apiVersion: 'cofre.dev/v1alpha1',
        kind: 'CofreSecret',
        metadata: { name: 'orphan' },
        spec: { connectionRef: { name: 'nowhere' }, source: { mount: 'secret', path: 'x' }, target: { name: 'x' } },
      },
    });
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [
        ...['--import', 'tsx', 'src/cli/main.ts', 'operator', 'kubernetes'],
        ...['--kubeconfig', cluster.kubeconfigPath, '--log-level', 'warn'],
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, COFRE_OPERATOR_METRICS_BIND_ADDRESS: `127.0.0.1:${port}` },
      },
    );
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const failure = await until('a "sync failed" line', async () =>
        out
          .split('\n')
          .filter((line) => line.startsWith('{'))
          .map((line) => JSON.parse(line) as { level: number; msg: string; reason?: string })
          .find((line) => line.msg === 'sync failed'),
      );
      assert.equal(failure.level, 50, 'error (pino level 50)');
      assert.equal(failure.reason, 'ConnectionNotFound');
      // At --log-level warn, the info lines (started, synced) are left out and nothing else is logged.
      assert.doesNotMatch(out, /"level":(10|20|30),/);
      assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200);
      child.kill('SIGTERM');
      assert.equal(await exited, 0, out);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('refuses bad flags with a clear message', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'operator', 'kubernetes', '--leader-elect=maybe'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.notEqual(code, 0);
    assert.match(err, /expected true or false/);
  });
});
