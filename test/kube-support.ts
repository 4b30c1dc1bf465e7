import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import type { TestCluster } from '../scripts/test-cluster.js';
import type { Api } from './support.js';

/**
 * Lets a Cofre server validate this cluster's service-account tokens, as Vault's docs set it up: a reviewer
 * service account bound to system:auth-delegator (it may call TokenReview and nothing else), and the Kubernetes
 * auth method enabled at auth/kubernetes with the cluster's address, CA and the reviewer's token.
 */
export async function enableKubernetesAuth(api: Api, cluster: TestCluster, kc: k8s.KubeConfig): Promise<void> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await core.createNamespacedServiceAccount({
    namespace: 'kube-system',
    body: { metadata: { name: 'cofre-reviewer' } },
  });
  await kc.makeApiClient(k8s.RbacAuthorizationV1Api).createClusterRoleBinding({
    body: {
      metadata: { name: 'cofre-reviewer' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' },
      subjects: [{ kind: 'ServiceAccount', name: 'cofre-reviewer', namespace: 'kube-system' }],
    },
  });
  const reviewer = await core.createNamespacedServiceAccountToken({
    namespace: 'kube-system',
    name: 'cofre-reviewer',
    body: { spec: { audiences: ['https://kubernetes.default.svc'], expirationSeconds: 3600 } },
  });
  const check = (res: { status: number; text: string }): void => {
    if (res.status >= 300) throw new Error(`Cofre API ${res.status}: ${res.text}`);
  };
  check(await api.call('POST', 'sys/auth/kubernetes', { body: { type: 'kubernetes' } }));
  check(
    await api.call('POST', 'auth/kubernetes/config', {
      body: {
        kubernetes_host: cluster.server,
        kubernetes_ca_cert: cluster.caCert,
        token_reviewer_jwt: reviewer.status!.token,
        disable_local_ca_jwt: true,
      },
    }),
  );
}

/** The keys of the entries that hold any of the forms. */
export function holding(entries: { key: string; value: Buffer }[], forms: Buffer[]): string[] {
  return entries.filter((e) => forms.some((f) => e.value.includes(f))).map((e) => e.key);
}

/** Every key and value of an etcd, through its v3 JSON gateway: the range from "\0" to "\0" is the whole keyspace. */
export async function etcdDump(url: string): Promise<{ key: string; value: Buffer }[]> {
  const zero = Buffer.from([0]).toString('base64');
  const res = await fetch(`${url}/v3/kv/range`, {
    method: 'POST',
    body: JSON.stringify({ key: zero, range_end: zero }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  const body = (await res.json()) as { kvs?: { key: string; value?: string }[]; more?: boolean };
  assert.notEqual(body.more, true, 'the whole keyspace in one answer');
  return (body.kvs ?? []).map((kv) => ({
    key: Buffer.from(kv.key, 'base64').toString(),
    // The key is part of what is stored: a value in a key would be a leak too.
    value: Buffer.concat([Buffer.from(kv.key, 'base64'), Buffer.from(kv.value ?? '', 'base64')]),
  }));
}

/**
 * The byte strings by which a value shows in a dump: itself, and its base64 and base64url at each of the three
 * alignments it can have inside a longer base64 text (the 4-character groups that also hold neighbouring bytes are
 * dropped), and its hex.
 */
export function encodedForms(value: string): Buffer[] {
  const raw = Buffer.from(value);
  const forms = [raw, Buffer.from(raw.toString('hex'))];
  for (const offset of [0, 1, 2]) {
    for (const encoding of ['base64', 'base64url'] as const) {
      const text = Buffer.concat([Buffer.alloc(offset), raw]).toString(encoding);
      forms.push(Buffer.from(text.slice(offset === 0 ? 0 : 4, -4)));
    }
  }
  return forms;
}

/** Runs a command in a pod's container through the API server, like `kubectl exec`; returns its stdout. */
export async function execInPod(
  kc: k8s.KubeConfig,
  namespace: string,
  pod: string,
  container: string,
  command: string[],
): Promise<string> {
  let out = '';
  const stdout = new Writable({
    write(chunk: Buffer, _enc, done) {
      out += chunk.toString();
      done();
    },
  });
  const status = await new Promise<k8s.V1Status>((resolve, reject) => {
    new k8s.Exec(kc).exec(namespace, pod, container, command, stdout, null, null, false, resolve).catch(reject);
  });
  assert.equal(status.status, 'Success', JSON.stringify(status));
  return out;
}
