// The CRDs in charts/cofre/crds/ on a real kube-apiserver: they become Established, a valid CofreSecret comes back
// with the schema's defaults, every invalid one is rejected by the API server with the schema's own message, and
// `kubectl get cofresecrets` shows the printer columns. kubectl comes from scripts/kube-tools.ts.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { kubeTools } from '../scripts/kube-tools.js';
import { startCluster, type TestCluster } from '../scripts/test-cluster.js';

const execFileP = promisify(execFile);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const crdDir = path.join(repo, 'charts', 'cofre', 'crds');
const GROUP = 'cofre.dev';
const VERSION = 'v1alpha1';
const CRDS = ['cofresecrets.cofre.dev', 'cofreconnections.cofre.dev', 'clustercofreconnections.cofre.dev'];
const external = Boolean(process.env.COFRE_TEST_KUBECONFIG);

type Obj = Record<string, unknown>;

/** A valid CofreSecret spec, deep-copied so that each case can break one thing. */
function validSpec(): Obj {
  return {
    connectionRef: { name: 'main' },
    source: { mount: 'secret', path: 'team-a/db' },
    target: { name: 'db-credentials' },
    rolloutRestartTargets: [{ kind: 'Deployment', name: 'api' }],
  };
}

/** The Status message of a rejected request (client-node puts the API server's JSON body on the error). */
function apiMessage(err: unknown): string {
  const body = (err as { body?: unknown }).body;
  if (typeof body === 'string') {
    try {
      return String((JSON.parse(body) as { message?: unknown }).message ?? body);
    } catch {
      return body;
    }
  }
  if (body && typeof body === 'object' && 'message' in body) return String((body as { message: unknown }).message);
  return (err as Error).message;
}

describe('cofre.dev CRDs on a real API server', () => {
  let cluster: TestCluster;
  let kc: k8s.KubeConfig;
  let custom: k8s.CustomObjectsApi;
  let kubectl: string;
  const ns = `crds-${Date.now().toString(36)}`;
  const kubectlRun = async (...args: string[]) =>
    (await execFileP(kubectl, ['--kubeconfig', cluster.kubeconfigPath, ...args], { maxBuffer: 8 << 20 })).stdout;

  before(async () => {
    ({ kubectl } = await kubeTools());
    cluster = await startCluster({ name: 'crds-test', controllerManager: false });
    kc = new k8s.KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    await kc.makeApiClient(k8s.CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
  });
  after(async () => {
    if (external && kc)
      await kc
        .makeApiClient(k8s.CoreV1Api)
        .deleteNamespace({ name: ns })
        .catch(() => {});
    await cluster?.stop();
  });

  it('applies the CRDs and they become Established', async (t) => {
    const started = Date.now();
    await kubectlRun('apply', '--server-side', '--force-conflicts', '-f', crdDir);
    const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
    for (const name of CRDS) {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const crd = await ext.readCustomResourceDefinition({ name });
        const established = crd.status?.conditions?.find((c) => c.type === 'Established');
        if (established?.status === 'True') break;
        if (Date.now() > deadline) assert.fail(`${name} not Established after 30 s: ${JSON.stringify(crd.status)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    t.diagnostic(`CRDs established in ${Date.now() - started} ms`);
  });

  it('accepts a valid CofreSecret and fills in the defaults', async () => {
    await custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns,
      plural: 'cofresecrets',
      body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'CofreSecret', metadata: { name: 'db' }, spec: validSpec() },
    });
    const got = (await custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns,
      plural: 'cofresecrets',
      name: 'db',
    })) as { spec: Obj };
    assert.deepEqual(got.spec, {
      connectionRef: { name: 'main', kind: 'CofreConnection' },
      source: { type: 'kv', mount: 'secret', path: 'team-a/db', kvVersion: 2 },
      target: { name: 'db-credentials', kind: 'Secret', type: 'Opaque' },
      refresh: { mode: 'watch' },
      rolloutRestartTargets: [{ kind: 'Deployment', name: 'api' }],
      deletionPolicy: 'Delete',
    });
  });

  it('accepts a CofreConnection with defaults and rejects a non-URL address', async () => {
    const create = (name: string, spec: Obj) =>
      custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: ns,
        plural: 'cofreconnections',
        body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'CofreConnection', metadata: { name }, spec },
      });
    const made = (await create('main', {
      address: 'https://cofre.cofre-system.svc:8200',
      caBundle: Buffer.from('-----BEGIN CERTIFICATE-----\n').toString('base64'),
      auth: { kubernetes: { role: 'team-a' } },
    })) as { spec: { auth: { kubernetes: Obj } } };
    assert.deepEqual(made.spec.auth.kubernetes, {
      role: 'team-a',
      mountPath: 'kubernetes',
      serviceAccountName: 'default',
      audience: 'cofre',
    });
    await assert.rejects(create('bad', { address: 'cofre:8200', auth: { kubernetes: { role: 'x' } } }), (e) => {
      assert.match(apiMessage(e), /spec\.address in body should match/);
      return true;
    });
    await assert.rejects(
      create('plain', { address: 'http://cofre:8200', caBundle: 'QUJD', auth: { kubernetes: { role: 'x' } } }),
      (e) => {
        assert.match(apiMessage(e), /caBundle applies only to an https:\/\/ address/);
        return true;
      },
    );
  });

  const invalid: { name: string; mutate: (spec: Obj) => void; message: RegExp }[] = [
    {
      name: 'missing source.path',
      mutate: (s) => delete (s.source as Obj).path,
      message: /spec\.source\.path: Required value/,
    },
    {
      name: 'a path with ".."',
      mutate: (s) => ((s.source as Obj).path = 'team-a/../team-b/db'),
      message: /source\.path must not contain "\." or "\.\." segments/,
    },
    {
      name: 'a mount with "." or ".." (the HTTP client would collapse them: "./auth/..." reaches auth/)',
      mutate: (s) => ((s.source as Obj).mount = 'secret/..'),
      message: /source\.mount must not contain "\." or "\.\." segments/,
    },
    {
      name: 'a path with a leading "/"',
      mutate: (s) => ((s.source as Obj).path = '/team-a/db'),
      message: /source\.path must not start with "\/"/,
    },
    {
      name: 'target.kind Job',
      mutate: (s) => ((s.target as Obj).kind = 'Job'),
      message: /spec\.target\.kind: Unsupported value: "Job": supported values: "Secret", "ConfigMap"/,
    },
    {
      name: 'refresh mode interval without an interval',
      mutate: (s) => (s.refresh = { mode: 'interval' }),
      message: /refresh\.interval is required when refresh\.mode is interval/,
    },
    {
      name: 'an interval below 1s',
      mutate: (s) => (s.refresh = { mode: 'interval', interval: '100ms' }),
      message: /refresh\.interval must be at least 1s/,
    },
    {
      name: 'type kubernetes.io/tls on a ConfigMap target',
      mutate: (s) => (s.target = { name: 'cfg', kind: 'ConfigMap', type: 'kubernetes.io/tls' }),
      message: /target\.type applies only to kind Secret/,
    },
    {
      name: 'deletionPolicy Maybe',
      mutate: (s) => (s.deletionPolicy = 'Maybe'),
      message: /spec\.deletionPolicy: Unsupported value: "Maybe": supported values: "Delete", "Retain"/,
    },
    {
      name: 'a version on a KV v1 source',
      mutate: (s) => (s.source = { mount: 'kv', path: 'a', kvVersion: 1, version: 3 }),
      message: /source\.version needs kvVersion 2/,
    },
    {
      name: 'a version on a read source',
      mutate: (s) => (s.source = { type: 'read', mount: 'database', path: 'static-creds/app', version: 3 }),
      message: /source\.version needs kvVersion 2 and type kv/,
    },
    {
      name: 'a grace period on a KV source',
      mutate: (s) => ((s.source as Obj).gracePeriod = '5m'),
      message: /source\.gracePeriod applies only to type dynamic/,
    },
    {
      name: 'an unknown source type',
      mutate: (s) => ((s.source as Obj).type = 'pki'),
      message: /spec\.source\.type: Unsupported value: "pki": supported values: "kv", "read", "dynamic"/,
    },
    {
      name: 'a rolloutTimeout that is not a duration',
      mutate: (s) => (s.rolloutTimeout = '10 minutes'),
      message: /spec\.rolloutTimeout in body should match/,
    },
    {
      name: 'a target name that is not a DNS-1123 subdomain',
      mutate: (s) => ((s.target as Obj).name = 'DB_Credentials'),
      message: /spec\.target\.name in body should match/,
    },
    {
      name: 'more than 20 rollout targets',
      mutate: (s) =>
        (s.rolloutRestartTargets = Array.from({ length: 21 }, (_, i) => ({ kind: 'Deployment', name: `d${i}` }))),
      message: /spec\.rolloutRestartTargets: Too many: 21: must have at most 20 items/,
    },
  ];
  for (const c of invalid) {
    it(`rejects ${c.name} with the schema's message`, async () => {
      const spec = validSpec();
      c.mutate(spec);
      await assert.rejects(
        custom.createNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace: ns,
          plural: 'cofresecrets',
          body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'CofreSecret', metadata: { name: 'bad' }, spec },
        }),
        (e) => {
          assert.equal((e as { code?: number }).code, 422, apiMessage(e));
          assert.match(apiMessage(e), c.message);
          return true;
        },
      );
    });
  }

  it('keeps target.kind and target.name immutable', async () => {
    await assert.rejects(
      custom.patchNamespacedCustomObject(
        {
          group: GROUP,
          version: VERSION,
          namespace: ns,
          plural: 'cofresecrets',
          name: 'db',
          body: { spec: { target: { name: 'other' } } },
        },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      ),
      (e) => {
        assert.match(apiMessage(e), /target\.kind and target\.name are immutable/);
        return true;
      },
    );
  });

  it('kubectl get cofresecrets shows the printer columns', async () => {
    const out = await kubectlRun('get', 'cofresecrets', '-n', ns);
    const [header = '', row = ''] = out.trim().split('\n');
    assert.deepEqual(header.split(/\s{2,}/), [
      'NAME',
      'READY',
      'REASON',
      'MOUNT',
      'SOURCE',
      'TARGET',
      'OUTDATED PODS',
      'AGE',
    ]);
    assert.match(row, /^db\s+secret\s+team-a\/db\s+db-credentials\s+\d+s$/);
    const wide = await kubectlRun('get', 'csec', '-n', ns, '-o', 'wide');
    assert.match(wide.split('\n')[0] ?? '', /KIND\s+VERSION\s+LAST SYNC\s+AGE$/);
    const conns = await kubectlRun('get', 'cofreconnections', '-n', ns);
    assert.match(
      conns,
      /^NAME\s+ADDRESS\s+ROLE\s+READY\s+AGE\nmain\s+https:\/\/cofre\.cofre-system\.svc:8200\s+team-a/,
    );
  });
});
