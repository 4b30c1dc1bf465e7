// `cofre injector` on a real kube-apiserver: the spawned command serves /mutate over HTTPS on loopback with a
// certificate from a CA made here, registered in a MutatingWebhookConfiguration (caBundle, objectSelector on the
// opt-in label, failurePolicy Fail). Pods and a Deployment's pods (made by the real controller manager) are
// created and read back from the API server. Pods name a node that does not exist, so nothing runs.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import https from 'node:https';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { startCluster, type TestCluster } from '../scripts/test-cluster.js';
import { EXEC_PREFIX } from '../src/kube/injector/contract.js';
import { loopbackWebhook, spawnInjector } from './injector-webhook.js';

const NS = 'injector-test';
const NODE = 'no-such-node';
const CA_FOR_COFRE = '-----BEGIN CERTIFICATE-----\nMIIBcofretest\n-----END CERTIFICATE-----\n';

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last = '';
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} ${last}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The message of a refused create, as kubectl would print it. */
async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    const body = (err as { body?: string }).body;
    return body ? ((JSON.parse(body) as { message?: string }).message ?? body) : (err as Error).message;
  }
  assert.fail('the API server accepted what it should have refused');
}

/** One HTTPS request to the injector, verifying its certificate against `ca`. */
function call(url: string, ca: string, method: string, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, ca, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const envOf = (c: k8s.V1Container | undefined, name: string) => c?.env?.find((e) => e.name === name)?.value;

describe('cofre injector on a real kube-apiserver', () => {
  let cluster: TestCluster;
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let injector: ChildProcess;
  let exited: Promise<number | null>;
  let output: () => string = () => '';
  let port: number;
  let caCert: string;

  before(async () => {
    cluster = await startCluster({ name: 'injector-test', controllerManager: true });
    kc = new k8s.KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    core = kc.makeApiClient(k8s.CoreV1Api);

    const spawned = await spawnInjector({
      dir: cluster.dir,
      args: ['--agent-image', 'cofre:test', '--agent-image-pull-policy', 'Never'],
      // Flags and their environment fallbacks both work: the address and the CA come from the environment.
      env: { COFRE_ADDR: 'https://cofre.cofre.svc:8200', COFRE_CACERT: CA_FOR_COFRE },
    });
    ({ child: injector, port, caCert, exited } = spawned);
    output = spawned.output;
    await kc.makeApiClient(k8s.AdmissionregistrationV1Api).createMutatingWebhookConfiguration({
      body: loopbackWebhook('cofre-injector', port, caCert),
    });
    await core.createNamespace({ body: { metadata: { name: NS } } });
    // The controller manager creates each namespace's default ServiceAccount, which pods need.
    await until('the default ServiceAccount', () =>
      core.readNamespacedServiceAccount({ name: 'default', namespace: NS }),
    );
  });

  after(async () => {
    injector?.kill('SIGKILL');
    await cluster?.stop();
  });

  const create = (
    name: string,
    labels: Record<string, string>,
    annotations: Record<string, string>,
    spec: Partial<k8s.V1PodSpec>,
  ) =>
    core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name, labels, annotations },
        spec: { nodeName: NODE, containers: [{ name: 'app', image: 'app:1', command: ['/app/server'] }], ...spec },
      },
    });
  const optIn = { 'cofre.dev/inject': 'true' };

  it('injects an annotated pod: memory volume, read-only mounts, init agent, native sidecar, wrapped command and probe, projected token', async () => {
    await create(
      'app',
      optIn,
      {
        'cofre.dev/role': 'app',
        'cofre.dev/audience': 'cofre-test',
        'cofre.dev/sidecar': 'true',
        'cofre.dev/secret-db': 'secret/app/db',
        'cofre.dev/keys-db': 'password',
        'cofre.dev/filename-db': 'db.json',
        'cofre.dev/creds-pg': 'database/creds/app',
        'cofre.dev/template-pg': 'user={{ .Data.username }} password={{ .Data.password }}',
        'cofre.dev/filemode-pg': '0440',
        'cofre.dev/secret-api': 'secret/app/api',
        'cofre.dev/env-api': 'API_KEY=key',
        'cofre.dev/containers': 'app',
      },
      {
        containers: [
          {
            name: 'app',
            image: 'app:1',
            command: ['/app/server'],
            args: ['--port', '8080'],
            livenessProbe: { exec: { command: ['/app/healthy'] } },
          },
          { name: 'logs', image: 'logs:1' },
        ],
      },
    );
    const pod = await core.readNamespacedPod({ name: 'app', namespace: NS });
    const spec = pod.spec!;
    assert.equal(pod.metadata!.annotations!['cofre.dev/status'], 'injected');
    const volumes = new Map(spec.volumes!.map((v) => [v.name, v]));
    assert.equal(volumes.get('cofre-secrets')!.emptyDir!.medium, 'Memory');
    assert.equal(volumes.get('cofre-bin')!.emptyDir!.medium, undefined, 'the exec runtime sits on disk');
    assert.deepEqual(
      { ...volumes.get('cofre-token')!.projected!.sources![0]!.serviceAccountToken },
      {
        audience: 'cofre-test',
        expirationSeconds: 3600,
        path: 'token',
      },
    );

    const [init, sidecar, ...others] = spec.initContainers!;
    assert.equal(others.length, 0);
    assert.equal(init!.name, 'cofre-agent-init');
    assert.deepEqual(init!.command, ['cofre', 'agent', '-init']);
    assert.equal(init!.image, 'cofre:test');
    assert.equal(init!.imagePullPolicy, 'Never');
    assert.equal(init!.restartPolicy, undefined);
    assert.equal(sidecar!.name, 'cofre-agent');
    assert.equal(sidecar!.restartPolicy, 'Always', 'a native sidecar');
    assert.deepEqual(sidecar!.command, ['cofre', 'agent']);
    for (const agent of [init!, sidecar!]) {
      assert.equal(envOf(agent, 'COFRE_ADDR'), 'https://cofre.cofre.svc:8200');
      assert.equal(envOf(agent, 'COFRE_CACERT'), CA_FOR_COFRE);
      const secrets = agent.volumeMounts!.find((m) => m.name === 'cofre-secrets')!;
      assert.equal(secrets.mountPath, '/cofre/secrets');
      assert.ok(!secrets.readOnly, 'the agent writes the files');
      const config = JSON.parse(envOf(agent, 'COFRE_AGENT_CONFIG')!) as { items: { name: string }[] };
      assert.deepEqual(
        config.items.map((i) => i.name),
        ['db', 'pg'],
      );
    }
    assert.ok(init!.volumeMounts!.some((m) => m.name === 'cofre-bin' && m.mountPath === '/cofre/bin' && !m.readOnly));
    assert.ok(!sidecar!.volumeMounts!.some((m) => m.name === 'cofre-bin'));

    const [app, logs] = spec.containers;
    assert.deepEqual(app!.command, [...EXEC_PREFIX, '/app/server', '--port', '8080']);
    assert.equal(app!.args, undefined);
    assert.deepEqual(app!.livenessProbe!.exec!.command, [...EXEC_PREFIX, '/app/healthy']);
    assert.deepEqual(JSON.parse(envOf(app, 'COFRE_AGENT_CONFIG')!).items, [
      { name: 'api', kv: 'secret/app/api', env: { API_KEY: 'key' } },
    ]);
    const mounts = (c: k8s.V1Container) =>
      Object.fromEntries(c.volumeMounts!.map((m) => [m.name, [m.mountPath, m.readOnly]]));
    assert.deepEqual(mounts(app!)['cofre-secrets'], ['/cofre/secrets', true]);
    assert.deepEqual(mounts(app!)['cofre-bin'], ['/cofre/bin', true]);
    assert.deepEqual(mounts(app!)['cofre-token'], ['/var/run/secrets/cofre', true]);
    // Never the agents' state; and a KV item in env vars has no lease for the sidecar, so no exec-state either.
    assert.equal(mounts(app!)['cofre-agent-state'], undefined);
    assert.equal(mounts(app!)['cofre-exec-state'], undefined);
    // Not an env container: the files, read-only, and nothing else of ours.
    assert.deepEqual(mounts(logs!)['cofre-secrets'], ['/cofre/secrets', true]);
    assert.equal(mounts(logs!)['cofre-bin'], undefined);
    assert.equal(logs!.command, undefined);
    assert.equal(logs!.env, undefined);
    assert.match(output(), /"decision":"injected"/);
  });

  it('does not inject a pod twice: the spec of an injected pod, submitted again, comes back as it was', async () => {
    const injected = await core.readNamespacedPod({ name: 'app', namespace: NS });
    // What the ServiceAccount admission plugin added goes, as it would add it again under another name.
    const ours = (name: string) => !name.startsWith('kube-api-access-');
    const spec = structuredClone(injected.spec!);
    spec.volumes = spec.volumes!.filter((v) => ours(v.name));
    for (const c of [...spec.containers, ...spec.initContainers!])
      c.volumeMounts = c.volumeMounts!.filter((m) => ours(m.name));
    await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: 'app-again', labels: injected.metadata!.labels, annotations: injected.metadata!.annotations },
        spec,
      },
    });
    const again = await core.readNamespacedPod({ name: 'app-again', namespace: NS });
    const names = (p: k8s.V1Pod) => ({
      volumes: p.spec!.volumes!.map((v) => v.name).filter(ours),
      init: p.spec!.initContainers!.map((c) => c.name),
      command: p.spec!.containers[0]!.command,
      env: p.spec!.containers[0]!.env!.map((e) => e.name),
    });
    assert.deepEqual(names(again), names(injected));
    assert.match(output(), /"decision":"unchanged","reason":"already injected"/);
  });

  it('leaves a pod without the label untouched, annotations or not', async () => {
    await create('plain', {}, { 'cofre.dev/role': 'app', 'cofre.dev/secret-db': 'secret/app/db' }, {});
    const pod = await core.readNamespacedPod({ name: 'plain', namespace: NS });
    assert.equal(pod.metadata!.annotations!['cofre.dev/status'], undefined);
    assert.equal(pod.spec!.initContainers, undefined);
    assert.ok(!pod.spec!.volumes!.some((v) => v.name.startsWith('cofre-')));
    assert.deepEqual(pod.spec!.containers[0]!.command, ['/app/server']);
  });

  it('refuses a bad annotation with a message naming it', async () => {
    const message = await refusal(
      create(
        'bad',
        optIn,
        { 'cofre.dev/role': 'app', 'cofre.dev/secret-db': 'secret/app/db', 'cofre.dev/filemode-db': '999' },
        {},
      ),
    );
    assert.match(message, /admission webhook "inject\.cofre\.dev" denied the request/);
    assert.match(
      message,
      /annotation cofre\.dev\/filemode-db: expected an octal file mode such as 0400 or 0440, got "999"/,
    );
    const typo = await refusal(
      create('typo', optIn, { 'cofre.dev/role': 'app', 'cofre.dev/secrte-db': 'secret/db' }, {}),
    );
    assert.match(typo, /annotation cofre\.dev\/secrte-db: unknown annotation/);
    await assert.rejects(core.readNamespacedPod({ name: 'bad', namespace: NS }));
  });

  it('refuses an env-mode pod whose command is not in the spec, saying so', async () => {
    const message = await refusal(
      create(
        'nocommand',
        optIn,
        {
          'cofre.dev/role': 'app',
          'cofre.dev/mode': 'env',
          'cofre.dev/secret-api': 'secret/app/api',
          'cofre.dev/keys-api': 'key',
        },
        { containers: [{ name: 'app', image: 'app:1', args: ['serve'] }] },
      ),
    );
    assert.match(message, /container app gets environment variables from Cofre, so its command must be known/);
    assert.match(message, /cofre\.dev\/command/);
    assert.match(message, /never looks up an image's entrypoint in a registry/);
    // With the annotation, the same pod is accepted: the annotation is the entrypoint, the spec's args follow.
    await create(
      'withcommand',
      optIn,
      {
        'cofre.dev/role': 'app',
        'cofre.dev/mode': 'env',
        'cofre.dev/secret-api': 'secret/app/api',
        'cofre.dev/keys-api': 'key',
        'cofre.dev/command': '["/entrypoint"]',
      },
      { containers: [{ name: 'app', image: 'app:1', args: ['serve'] }] },
    );
    const pod = await core.readNamespacedPod({ name: 'withcommand', namespace: NS });
    assert.deepEqual(pod.spec!.containers[0]!.command, [...EXEC_PREFIX, '/entrypoint', 'serve']);
    assert.deepEqual(JSON.parse(envOf(pod.spec!.containers[0], 'COFRE_AGENT_CONFIG')!).items[0].env, {
      API_KEY: 'key',
    });
  });

  it("mutates the pods a Deployment's ReplicaSet creates", async () => {
    const labels = { app: 'web', ...optIn };
    await kc.makeApiClient(k8s.AppsV1Api).createNamespacedDeployment({
      namespace: NS,
      body: {
        metadata: { name: 'web' },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: 'web' } },
          template: {
            metadata: { labels, annotations: { 'cofre.dev/role': 'web', 'cofre.dev/secret-tls': 'secret/web/tls' } },
            spec: { nodeName: NODE, containers: [{ name: 'web', image: 'web:1' }] },
          },
        },
      },
    });
    const pods = await until('the Deployment pods', async () => {
      const list = await core.listNamespacedPod({ namespace: NS, labelSelector: 'app=web' });
      return list.items.length === 2 ? list.items : undefined;
    });
    for (const pod of pods) {
      assert.ok(pod.metadata!.generateName!.startsWith('web-'));
      assert.equal(pod.spec!.initContainers![0]!.name, 'cofre-agent-init');
      assert.equal(pod.spec!.volumes!.find((v) => v.name === 'cofre-secrets')!.emptyDir!.medium, 'Memory');
      assert.ok(pod.spec!.containers[0]!.volumeMounts!.some((m) => m.name === 'cofre-secrets' && m.readOnly));
    }
  });

  it('answers only AdmissionReviews on POST /mutate, over TLS', async () => {
    const url = `https://127.0.0.1:${port}`;
    assert.equal((await call(`${url}/mutate`, caCert, 'GET')).status, 405);
    assert.equal((await call(`${url}/other`, caCert, 'POST', '{}')).status, 404);
    const notJson = await call(`${url}/mutate`, caCert, 'POST', 'not json');
    assert.deepEqual(notJson, { status: 400, text: 'expected a JSON AdmissionReview' });
    const wrong = await call(
      `${url}/mutate`,
      caCert,
      'POST',
      JSON.stringify({ kind: 'AdmissionReview', apiVersion: 'admission.k8s.io/v1beta1' }),
    );
    assert.equal(wrong.status, 400);
    assert.match(wrong.text, /admission\.k8s\.io\/v1/);
    // A client that does not trust the injector's CA gets no answer.
    await assert.rejects(call(`${url}/healthz`, cluster.caCert, 'GET'), /certificate/);
  });

  it('stops on SIGTERM; then an opted-in pod is refused (failurePolicy Fail) and an ordinary pod is created', async () => {
    injector.kill('SIGTERM');
    assert.equal(await exited, 0, output());
    const message = await refusal(
      create('orphan', optIn, { 'cofre.dev/role': 'app', 'cofre.dev/secret-db': 'secret/app/db' }, {}),
    );
    assert.match(message, /failed calling webhook "inject\.cofre\.dev"/);
    await assert.rejects(core.readNamespacedPod({ name: 'orphan', namespace: NS }));
    await create('ordinary', {}, {}, {});
    const pod = await core.readNamespacedPod({ name: 'ordinary', namespace: NS });
    assert.equal(pod.spec!.initContainers, undefined);
  });
});

describe('cofre injector (the command line)', () => {
  it('refuses to start without what it needs, saying which flag', async () => {
    const start = (args: string[], env: NodeJS.ProcessEnv = {}) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'injector', ...args], {
          stdio: ['ignore', 'ignore', 'pipe'],
          env: { PATH: process.env.PATH, ...env },
        });
        let stderr = '';
        child.stderr.on('data', (d) => (stderr += d));
        child.on('exit', (code) => resolve({ code, stderr }));
      });
    const tls = ['--tls-cert-file', '/nonexistent.crt', '--tls-key-file', '/nonexistent.key'];
    const noImage = await start([...tls, '--cofre-address', 'https://c:8200']);
    assert.equal(noImage.code, 1);
    assert.match(noImage.stderr, /Error starting the injector: --agent-image \(or COFRE_AGENT_IMAGE\) is required/);
    const noAddress = await start([...tls, '--agent-image', 'cofre:1']);
    assert.match(noAddress.stderr, /--cofre-address \(or COFRE_ADDR\)/);
    const noCert = await start(['--agent-image', 'cofre:1'], { COFRE_ADDR: 'https://c:8200' });
    assert.match(noCert.stderr, /--tls-cert-file is required/);
    const badPolicy = await start([...tls, '--agent-image', 'cofre:1', '--agent-image-pull-policy', 'Sometimes'], {
      COFRE_ADDR: 'https://c:8200',
    });
    assert.match(badPolicy.stderr, /--agent-image-pull-policy: expected one of Always, IfNotPresent, Never/);
    const relative = await start([...tls, '--agent-image', 'cofre:1', '--default-files-dir', 'secrets'], {
      COFRE_ADDR: 'https://c:8200',
    });
    assert.match(relative.stderr, /--default-files-dir: expected an absolute directory/);
    const missingFile = await start([...tls, '--agent-image', 'cofre:1'], { COFRE_ADDR: 'https://c:8200' });
    assert.equal(missingFile.code, 1);
    assert.match(missingFile.stderr, /\/nonexistent\.crt/);
  });
});
