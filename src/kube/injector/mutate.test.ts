import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { parseAnnotations } from './annotations.js';
import { EXEC_PREFIX } from './contract.js';
import { mutatePod, PodRefusedError, type PatchOperation } from './mutate.js';
import { review } from './review.js';

const defaults = { authMount: 'kubernetes', audience: 'cofre', filesDir: '/cofre/secrets' };
const settings = { image: 'cofre:test', imagePullPolicy: 'Never', cofreAddress: 'https://cofre:8200' };

/** RFC 6902 add/replace/remove, enough to read the patch's result (the real API server applies it in test/). */
function applyPatch<T>(doc: T, ops: PatchOperation[]): T {
  const root = structuredClone(doc) as unknown as Record<string, unknown>;
  for (const op of ops) {
    const parts = op.path
      .split('/')
      .slice(1)
      .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = parts.pop()!;
    let parent: unknown = root;
    for (const p of parts) {
      parent = (parent as Record<string, unknown>)[p];
      assert.ok(parent !== undefined, `${op.op} ${op.path}: no parent`);
    }
    if (Array.isArray(parent)) {
      if (op.op === 'remove') parent.splice(Number(last), 1);
      else if (last === '-') parent.push(op.value);
      else if (op.op === 'add') parent.splice(Number(last), 0, op.value);
      else parent[Number(last)] = op.value;
    } else {
      const obj = parent as Record<string, unknown>;
      if (op.op === 'remove') {
        assert.ok(last in obj, `remove ${op.path}: absent`);
        delete obj[last];
      } else {
        if (op.op === 'replace') assert.ok(last in obj, `replace ${op.path}: absent`);
        obj[last] = op.value;
      }
    }
  }
  return root as unknown as T;
}

function pod(
  annotations: Record<string, string>,
  containers: V1Container[],
  extra: Partial<V1Pod['spec']> = {},
): V1Pod {
  return {
    metadata: {
      name: 'p',
      labels: { 'cofre.dev/inject': 'true' },
      annotations: { 'cofre.dev/role': 'app', ...annotations },
    },
    spec: { containers, ...extra },
  };
}

function inject(p: V1Pod): V1Pod {
  return applyPatch(p, mutatePod(p, parseAnnotations(p.metadata!.annotations, defaults), settings));
}

const envOf = (c: V1Container | undefined, name: string) => c?.env?.find((e) => e.name === name)?.value;

describe('injector mutation', () => {
  it('files: a memory volume, read-only mounts, the init agent first, the token with its audience', () => {
    const before = pod(
      { 'cofre.dev/secret-db': 'secret/app/db', 'cofre.dev/audience': 'vault', 'cofre.dev/files-dir': '/etc/app' },
      [
        { name: 'app', image: 'app', volumeMounts: [{ name: 'data', mountPath: '/data' }] },
        { name: 'side', image: 'side' },
      ],
      { volumes: [{ name: 'data', emptyDir: {} }], initContainers: [{ name: 'migrate', image: 'app' }] },
    );
    const after = inject(before);
    const spec = after.spec!;
    assert.deepEqual(
      spec.volumes!.map((v) => v.name),
      ['data', 'cofre-secrets', 'cofre-token'],
    );
    assert.deepEqual(spec.volumes![1]!.emptyDir, { medium: 'Memory' });
    assert.deepEqual(spec.volumes![2]!.projected!.sources![0]!.serviceAccountToken, {
      audience: 'vault',
      expirationSeconds: 3600,
      path: 'token',
    });
    assert.deepEqual(
      spec.initContainers!.map((c) => c.name),
      ['cofre-agent-init', 'migrate'],
    );
    const init = spec.initContainers![0]!;
    assert.deepEqual(init.command, ['cofre', 'agent', '-init']);
    assert.equal(init.image, 'cofre:test');
    assert.equal(init.imagePullPolicy, 'Never');
    assert.equal(init.restartPolicy, undefined);
    assert.deepEqual(init.volumeMounts, [
      { name: 'cofre-secrets', mountPath: '/cofre/secrets' },
      { name: 'cofre-token', mountPath: '/var/run/secrets/cofre', readOnly: true },
    ]);
    assert.equal(envOf(init, 'COFRE_ADDR'), 'https://cofre:8200');
    assert.equal(envOf(init, 'COFRE_CACERT'), undefined);
    assert.deepEqual(JSON.parse(envOf(init, 'COFRE_AGENT_CONFIG')!), {
      auth: { mount: 'kubernetes', role: 'app', token_path: '/var/run/secrets/cofre/token' },
      files_dir: '/cofre/secrets',
      revoke_on_exit: true,
      items: [{ name: 'db', kv: 'secret/app/db', file: { path: 'db', mode: '0400', format: 'json' } }],
    });
    for (const c of spec.containers) {
      assert.deepEqual(c.volumeMounts!.at(-1), { name: 'cofre-secrets', mountPath: '/etc/app', readOnly: true });
      assert.equal(c.command, undefined, 'a files-only pod keeps its commands');
    }
    assert.equal(after.metadata!.annotations!['cofre.dev/status'], 'injected');
    // A reinvocation (or the pod read back and re-submitted) is left as it is.
    assert.deepEqual(mutatePod(after, parseAnnotations(after.metadata!.annotations, defaults), settings), []);
  });

  it('a native sidecar after the init agent, without the bin volume', () => {
    const after = inject(
      pod(
        {
          'cofre.dev/secret-db': 'secret/app/db',
          'cofre.dev/sidecar': 'true',
          'cofre.dev/secret-api': 'kv/api',
          'cofre.dev/env-api': 'K=key',
        },
        [{ name: 'app', image: 'app', command: ['/app'] }],
      ),
    );
    const [init, sidecar] = after.spec!.initContainers!;
    assert.equal(sidecar!.name, 'cofre-agent');
    assert.equal(sidecar!.restartPolicy, 'Always');
    assert.deepEqual(sidecar!.command, ['cofre', 'agent']);
    assert.deepEqual(
      sidecar!.volumeMounts!.map((m) => m.name),
      ['cofre-secrets', 'cofre-token', 'cofre-agent-state'],
    );
    assert.deepEqual(
      init!.volumeMounts!.map((m) => [m.name, m.readOnly ?? false]),
      [
        ['cofre-secrets', false],
        ['cofre-token', true],
        ['cofre-bin', false],
        ['cofre-agent-state', false],
      ],
    );
    // The agents' state (a token) is in a memory volume of their own, which no application container mounts.
    assert.deepEqual(after.spec!.volumes!.find((v) => v.name === 'cofre-agent-state')!.emptyDir, {
      medium: 'Memory',
      sizeLimit: '1Mi',
    });
    assert.ok(after.spec!.containers.every((c) => !c.volumeMounts?.some((m) => m.name === 'cofre-agent-state')));
    // The init agent installs the exec runtime; the sidecar does not. Neither gets the env items.
    const initConfig = JSON.parse(envOf(init, 'COFRE_AGENT_CONFIG')!);
    const sidecarConfig = JSON.parse(envOf(sidecar, 'COFRE_AGENT_CONFIG')!);
    assert.equal(initConfig.install_to, '/cofre/bin');
    assert.equal(sidecarConfig.install_to, undefined);
    assert.equal(initConfig.state_file, '/cofre/state/agent.json');
    assert.equal(sidecarConfig.state_file, '/cofre/state/agent.json');
    assert.deepEqual(initConfig.items, sidecarConfig.items);
    assert.deepEqual(
      initConfig.items.map((i: { name: string }) => i.name),
      ['db'],
    );
    assert.equal(after.spec!.shareProcessNamespace, undefined, 'no signal asked, no shared process namespace');
  });

  it('a signal on change shares the process namespace, so the sidecar can reach the app', () => {
    const after = inject(
      pod(
        {
          'cofre.dev/secret-db': 'secret/app/db',
          'cofre.dev/sidecar': 'true',
          'cofre.dev/on-change-signal': 'SIGHUP',
          'cofre.dev/on-change-pid-file': '/cofre/secrets/.app.pid',
        },
        [{ name: 'app', image: 'app' }],
      ),
    );
    assert.equal(after.spec!.shareProcessNamespace, true);
    const sidecar = after.spec!.initContainers![1]!;
    assert.deepEqual(JSON.parse(envOf(sidecar, 'COFRE_AGENT_CONFIG')!).on_change, {
      signal: 'SIGHUP',
      pid_file: '/cofre/secrets/.app.pid',
    });
    // The app's user is not known: the agents run as root with CAP_KILL alone, so the signal reaches it.
    for (const agent of after.spec!.initContainers!.slice(0, 2))
      assert.deepEqual(agent.securityContext, {
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsUser: 0,
        capabilities: { drop: ['ALL'], add: ['KILL'] },
      });
  });

  it('a sidecar renews the leases of credentials in env vars: each exec leaves them in a directory of its own', () => {
    const after = inject(
      pod(
        {
          'cofre.dev/creds-pg': 'database/creds/app',
          'cofre.dev/env-pg': 'PGUSER=username,PGPASSWORD=password',
          'cofre.dev/sidecar': 'true',
        },
        [
          { name: 'app', image: 'app', command: ['/app'] },
          { name: 'worker', image: 'app', command: ['/worker'] },
        ],
      ),
    );
    assert.deepEqual(after.spec!.volumes!.find((v) => v.name === 'cofre-exec-state')!.emptyDir, {
      medium: 'Memory',
      sizeLimit: '1Mi',
    });
    for (const app of after.spec!.containers) {
      // Its own subdirectory, read-write; never the agents' state volume (the token the sidecar adopts).
      const stateMounts = app.volumeMounts!.filter((m) => m.name.startsWith('cofre-') && m.name.endsWith('-state'));
      assert.deepEqual(stateMounts, [{ name: 'cofre-exec-state', mountPath: '/cofre/exec-state', subPath: app.name }]);
      assert.equal(JSON.parse(envOf(app, 'COFRE_AGENT_CONFIG')!).state_file, '/cofre/exec-state/leases.json');
    }
    const [init, sidecar] = after.spec!.initContainers!;
    assert.deepEqual(JSON.parse(envOf(sidecar!, 'COFRE_AGENT_CONFIG')!).exec_state_files, [
      '/cofre/exec-state/app/leases.json',
      '/cofre/exec-state/worker/leases.json',
    ]);
    // The sidecar reads every container's directory and can write none of them; the init container has no business there.
    assert.deepEqual(
      sidecar!.volumeMounts!.find((m) => m.name === 'cofre-exec-state'),
      { name: 'cofre-exec-state', mountPath: '/cofre/exec-state', readOnly: true },
    );
    assert.ok(!init!.volumeMounts!.some((m) => m.name === 'cofre-exec-state'));
    assert.ok(sidecar!.volumeMounts!.some((m) => m.name === 'cofre-agent-state' && !m.readOnly));
    // KV items in env vars have no lease: no state volume in the app, and a sidecar with nothing to do is refused.
    const kvOnly = { 'cofre.dev/secret-a': 'kv/a', 'cofre.dev/env-a': 'A=a', 'cofre.dev/sidecar': 'true' };
    assert.throws(
      () => inject(pod(kvOnly, [{ name: 'app', image: 'app', command: ['/app'] }])),
      /the pod has neither \(no file item, no cofre.dev\/creds- item delivered as env vars\)/,
    );
  });

  it('refuses a pod that brings a volume named like one of the agents’ state volumes', () => {
    for (const name of ['cofre-agent-state', 'cofre-exec-state'])
      assert.throws(
        () =>
          inject(
            pod(
              { 'cofre.dev/secret-db': 'secret/app/db', 'cofre.dev/sidecar': 'true' },
              [{ name: 'app', image: 'a' }],
              {
                volumes: [{ name, emptyDir: {} }],
              },
            ),
          ),
        new RegExp(`the pod already has a volume named ${name}, a name the injector uses`),
      );
  });

  it('the agents run as the application’s user when the pod says which, so it can read 0400 files', () => {
    const annotations = {
      'cofre.dev/secret-db': 'secret/app/db',
      'cofre.dev/sidecar': 'true',
      'cofre.dev/on-change-signal': 'SIGHUP',
      'cofre.dev/on-change-process': 'server',
    };
    const agents = (p: V1Pod) =>
      inject(p)
        .spec!.initContainers!.slice(0, 2)
        .map((c) => c.securityContext);
    const asApp = {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsUser: 2000,
      runAsGroup: 3000,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
    };
    const podLevel = pod(annotations, [{ name: 'app', image: 'a' }], {
      securityContext: { runAsUser: 2000, runAsGroup: 3000 },
    });
    assert.deepEqual(agents(podLevel), [asApp, asApp]);
    const containerLevel = pod(annotations, [
      { name: 'app', image: 'a', securityContext: { runAsUser: 2000, runAsGroup: 3000 } },
      { name: 'log', image: 'b', securityContext: { runAsUser: 2000, runAsGroup: 3000 } },
    ]);
    assert.deepEqual(agents(containerLevel), [asApp, asApp]);
    // Two users: neither is taken; without a signal, the image's own user.
    const plain = { 'cofre.dev/secret-db': 'secret/app/db' };
    const mixed = pod(plain, [
      { name: 'app', image: 'a', securityContext: { runAsUser: 2000 } },
      { name: 'log', image: 'b', securityContext: { runAsUser: 2001 } },
    ]);
    assert.deepEqual(agents(mixed)[0], {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
  });

  it('env: the command runs through the agent, args folded in, exec probes wrapped, no value in the spec', () => {
    const before = pod(
      {
        'cofre.dev/secret-api': 'secret/app/api',
        'cofre.dev/env-api': 'API_KEY=key',
        'cofre.dev/command': '["/entrypoint"]',
        'cofre.dev/containers': 'app,noargs',
        'cofre.dev/revoke-on-exit': 'false',
      },
      [
        {
          name: 'app',
          image: 'app',
          command: ['/app/server'],
          args: ['--port', '8080'],
          env: [{ name: 'LOG', value: 'debug' }],
          livenessProbe: { exec: { command: ['/app/check', 'live'] } },
          readinessProbe: { httpGet: { path: '/', port: 8080 } },
          startupProbe: { exec: { command: ['/app/check'] } },
        },
        { name: 'noargs', image: 'x', args: ['run'] },
        { name: 'other', image: 'y' },
      ],
    );
    const after = inject(before);
    const [app, noargs, other] = after.spec!.containers;
    assert.deepEqual(app!.command, [...EXEC_PREFIX, '/app/server', '--port', '8080']);
    assert.equal(app!.args, undefined);
    assert.deepEqual(app!.livenessProbe!.exec!.command, [...EXEC_PREFIX, '/app/check', 'live']);
    assert.deepEqual(app!.startupProbe!.exec!.command, [...EXEC_PREFIX, '/app/check']);
    assert.deepEqual(app!.readinessProbe, { httpGet: { path: '/', port: 8080 } });
    assert.deepEqual(
      app!.env!.map((e) => e.name),
      ['LOG', 'COFRE_ADDR', 'COFRE_AGENT_CONFIG'],
    );
    assert.deepEqual(JSON.parse(envOf(app, 'COFRE_AGENT_CONFIG')!), {
      auth: { mount: 'kubernetes', role: 'app', token_path: '/var/run/secrets/cofre/token' },
      files_dir: '/cofre/secrets',
      revoke_on_exit: false,
      items: [{ name: 'api', kv: 'secret/app/api', env: { API_KEY: 'key' } }],
    });
    assert.deepEqual(app!.volumeMounts, [
      { name: 'cofre-bin', mountPath: '/cofre/bin', readOnly: true },
      { name: 'cofre-token', mountPath: '/var/run/secrets/cofre', readOnly: true },
    ]);
    // The annotation stands for the image's entrypoint; the container's args follow it.
    assert.deepEqual(noargs!.command, [...EXEC_PREFIX, '/entrypoint', 'run']);
    assert.equal(noargs!.args, undefined);
    // Not named in cofre.dev/containers: untouched (and no files volume: there are no file items).
    assert.deepEqual(other, { name: 'other', image: 'y' });
    assert.deepEqual(
      after.spec!.volumes!.map((v) => v.name),
      ['cofre-bin', 'cofre-token'],
    );
    assert.deepEqual(after.spec!.volumes![0]!.emptyDir, {});
  });

  it('the CA for Cofre goes to every agent invocation inline', () => {
    const p = pod({ 'cofre.dev/secret-a': 'kv/a', 'cofre.dev/mode': 'env', 'cofre.dev/keys-a': 'x' }, [
      { name: 'app', image: 'a', command: ['/a'] },
    ]);
    const ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const after = applyPatch(
      p,
      mutatePod(p, parseAnnotations(p.metadata!.annotations, defaults), { ...settings, caCert: ca }),
    );
    assert.equal(envOf(after.spec!.initContainers![0], 'COFRE_CACERT'), ca);
    assert.equal(envOf(after.spec!.containers[0], 'COFRE_CACERT'), ca);
  });

  it('refuses pods it cannot inject, with the reason', () => {
    const refused = (p: V1Pod, why: RegExp) =>
      assert.throws(
        () => mutatePod(p, parseAnnotations(p.metadata!.annotations, defaults), settings),
        (err: Error) => err instanceof PodRefusedError && why.test(err.message),
      );
    const signal = {
      'cofre.dev/secret-a': 'kv/a',
      'cofre.dev/on-change-signal': 'SIGHUP',
      'cofre.dev/on-change-process': 'app',
    };
    refused(pod(signal, [{ name: 'app', image: 'a' }]), /on-change-signal: only the sidecar/);
    refused(
      pod({ ...signal, 'cofre.dev/sidecar': 'true' }, [{ name: 'app', image: 'a' }], {
        securityContext: { runAsNonRoot: true },
      }),
      /must run as the application's user .*set spec.securityContext.runAsUser/,
    );
    refused(
      pod({ ...signal, 'cofre.dev/sidecar': 'true' }, [{ name: 'app', image: 'a' }], { shareProcessNamespace: false }),
      /shareProcessNamespace: false/,
    );
    const env = { 'cofre.dev/secret-a': 'kv/a', 'cofre.dev/env-a': 'A=a' };
    refused(pod(env, [{ name: 'app', image: 'a' }]), /container app .*no command .*cofre\.dev\/command.*registry/);
    refused(pod(env, [{ name: 'app', image: 'a', args: ['x'] }]), /container app .*no command/);
    refused(
      pod({ ...env, 'cofre.dev/containers': 'nope' }, [{ name: 'app', image: 'a', command: ['/a'] }]),
      /no container named nope/,
    );
    refused(
      pod({ 'cofre.dev/secret-a': 'kv/a', 'cofre.dev/containers': 'app' }, [{ name: 'app', image: 'a' }]),
      /cofre.dev\/containers: no item is delivered as environment variables/,
    );
    refused(
      pod({ ...env, 'cofre.dev/sidecar': 'true' }, [{ name: 'app', image: 'a', command: ['/a'] }]),
      /cofre.dev\/sidecar/,
    );
    refused(
      pod(env, [{ name: 'app', image: 'a', command: ['/a'], env: [{ name: 'COFRE_ADDR', value: 'x' }] }]),
      /already sets COFRE_ADDR/,
    );
    const file = { 'cofre.dev/secret-a': 'kv/a' };
    refused(
      pod(file, [{ name: 'app', image: 'a', volumeMounts: [{ name: 'x', mountPath: '/cofre/secrets/' }] }], {
        volumes: [{ name: 'x', emptyDir: {} }],
      }),
      /already mounts something at \/cofre\/secrets.*cofre.dev\/files-dir/,
    );
    refused(
      pod(file, [{ name: 'app', image: 'a' }], { volumes: [{ name: 'cofre-token', emptyDir: {} }] }),
      /volume named cofre-token/,
    );
    refused(pod(file, [{ name: 'cofre-agent', image: 'a' }]), /container named cofre-agent/);
  });
});

describe('injector AdmissionReview', () => {
  const reviewOf = (object: unknown, operation = 'CREATE') => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid: 'u-1', kind: { group: '', version: 'v1', kind: 'Pod' }, operation, namespace: 'ns', object },
  });

  it('patches an opted-in pod, leaves others alone, refuses a bad one with a 400 naming the annotation', () => {
    const opted = pod({ 'cofre.dev/secret-a': 'kv/a' }, [{ name: 'app', image: 'a' }]);
    const injected = review(reviewOf(opted), defaults, settings);
    assert.equal(injected.review.response.uid, 'u-1');
    assert.equal(injected.review.response.allowed, true);
    assert.equal(injected.review.response.patchType, 'JSONPatch');
    const ops = JSON.parse(Buffer.from(injected.review.response.patch!, 'base64').toString()) as PatchOperation[];
    assert.equal(applyPatch(opted, ops).spec!.initContainers![0]!.name, 'cofre-agent-init');

    const plain = { ...opted, metadata: { ...opted.metadata, labels: {} } };
    assert.deepEqual(review(reviewOf(plain), defaults, settings).review.response, { uid: 'u-1', allowed: true });
    assert.deepEqual(review(reviewOf(opted, 'UPDATE'), defaults, settings).review.response, {
      uid: 'u-1',
      allowed: true,
    });

    const bad = pod({ 'cofre.dev/secret-a': 'kv/a', 'cofre.dev/filemode-a': 'rw' }, [{ name: 'app', image: 'a' }]);
    const refused = review(reviewOf(bad), defaults, settings).review.response;
    assert.equal(refused.allowed, false);
    assert.equal(refused.patch, undefined);
    assert.equal(refused.status!.code, 400);
    assert.match(refused.status!.message, /^cofre injector: annotation cofre\.dev\/filemode-a: /);
  });

  it('rejects what is not an AdmissionReview v1', () => {
    assert.throws(() => review({}, defaults, settings), /expected a JSON AdmissionReview/);
    assert.throws(
      () => review({ ...reviewOf({}), apiVersion: 'admission.k8s.io/v1beta1' }, defaults, settings),
      /v1beta1/,
    );
    assert.throws(() => review({ ...reviewOf({}), request: { uid: '' } }, defaults, settings), /request\.uid/);
  });
});
