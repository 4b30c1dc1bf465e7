// What the provider asks of the Kubernetes API (its in-cluster service account, or --kubeconfig):
//   - a service-account token for the pod being mounted, minted with TokenRequest when the driver sent none for the
//     audience the SecretProviderClass asks for (a CSIDriver without tokenRequests). Bound to the pod when its uid
//     is known, so it dies with the pod; short-lived, since it serves one login;
//   - whether a pod still exists, so the dynamic credentials held for it are revoked once it is gone.
import * as k8s from '@kubernetes/client-node';
import type { TokenMinter } from './mount.js';
import { MountError } from './mount.js';
import type { PodChecker } from './pod-leases.js';

const EXPIRATION_SECONDS = 600;

export function kubeAccess(kubeconfig?: string): { minter: TokenMinter; podExists: PodChecker } {
  const kc = new k8s.KubeConfig();
  if (kubeconfig) kc.loadFromFile(kubeconfig);
  else kc.loadFromCluster();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const podExists: PodChecker = async ({ namespace, name, uid }) => {
    try {
      const pod = await core.readNamespacedPod({ namespace, name });
      return !uid || pod.metadata?.uid === uid;
    } catch (err) {
      if ((err as { code?: number }).code === 404) return false;
      throw err;
    }
  };
  const minter: TokenMinter = async (params, audience) => {
    const { namespace, serviceAccount, name, uid } = params.pod;
    try {
      const res = await core.createNamespacedServiceAccountToken({
        namespace,
        name: serviceAccount,
        body: {
          spec: {
            audiences: audience ? [audience] : [],
            expirationSeconds: EXPIRATION_SECONDS,
            ...(uid ? { boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name, uid } } : {}),
          },
        },
      });
      return res.status!.token;
    } catch (err) {
      const body = (err as { body?: string }).body;
      const reason = body ? ((JSON.parse(body) as { message?: string }).message ?? body) : (err as Error).message;
      throw new MountError(`minting a token for ${namespace}/${serviceAccount} (TokenRequest) failed: ${reason}`);
    }
  };
  return { minter, podExists };
}
