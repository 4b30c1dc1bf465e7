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
