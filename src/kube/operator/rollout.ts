// Rollout restart: set the pod-template annotation cofre.dev/content-hash of each named workload to the new content
// hash, as `kubectl rollout restart` does with its timestamp. Keyed by the hash rather than a time, it is idempotent:
// a retry or an operator restart for the same content finds the annotation already set and does nothing.
import { AppsV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { kubeCode, kubeMessage, SyncError } from './errors.js';
import { rolloutRestarts } from './metrics.js';
import { ROLLOUT_ANNOTATION, type CofreSecret } from './types.js';

type Workload = { spec?: { template?: { metadata?: { annotations?: Record<string, string> } } } };

export class RolloutRestarter {
  private readonly apps: AppsV1Api;
  constructor(kc: KubeConfig) {
    this.apps = kc.makeApiClient(AppsV1Api);
  }

  /**
   * Restarts the workloads whose annotation differs from `hash`. `contentChanged` says the content moved on from a
   * previous sync; without it (a first sync) only workloads that already carry an older hash are rolled, so creating a
   * CofreSecret does not restart everything it names.
   */
  async restart(cs: CofreSecret, hash: string, contentChanged: boolean): Promise<string[]> {
    const namespace = cs.metadata!.namespace!;
    const restarted: string[] = [];
    for (const t of cs.spec.rolloutRestartTargets ?? []) {
      const ops = this.ops(t.kind);
      let current: Workload;
      try {
        current = (await ops.read({ name: t.name, namespace })) as Workload;
      } catch (err) {
        // A workload that does not exist (yet) has no pods to restart; when created it reads the new content anyway.
        if (kubeCode(err) === 404) continue;
        throw new SyncError('RolloutFailed', `reading ${t.kind} ${t.name}: ${kubeMessage(err)}`);
      }
      const existing = current.spec?.template?.metadata?.annotations?.[ROLLOUT_ANNOTATION];
      if (existing === hash) continue;
      if (existing === undefined && !contentChanged) continue;
      const body = { spec: { template: { metadata: { annotations: { [ROLLOUT_ANNOTATION]: hash } } } } };
      try {
        await ops.patch({ name: t.name, namespace, body });
      } catch (err) {
        throw new SyncError('RolloutFailed', `restarting ${t.kind} ${t.name}: ${kubeMessage(err)}`);
      }
      rolloutRestarts.inc({ kind: t.kind });
      restarted.push(`${t.kind}/${t.name}`);
    }
    return restarted;
  }

  private ops(kind: WorkloadKind) {
    return workloadOps(this.apps, kind);
  }
}

export type WorkloadKind = 'Deployment' | 'StatefulSet' | 'DaemonSet';

/**
 * Read and merge-patch one workload kind through AppsV1Api: the rollout restart here and the cluster agent's rollouts
 * (src/kube/cluster-agent/apply.ts) both roll a workload by merge-patching its pod-template annotations.
 */
export function workloadOps(apps: AppsV1Api, kind: WorkloadKind) {
  const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  type P = { name: string; namespace: string; body?: object };
  switch (kind) {
    case 'Deployment':
      return {
        read: (p: P) => apps.readNamespacedDeployment(p),
        patch: (p: P) => apps.patchNamespacedDeployment({ ...p, body: p.body }, merge),
      };
    case 'StatefulSet':
      return {
        read: (p: P) => apps.readNamespacedStatefulSet(p),
        patch: (p: P) => apps.patchNamespacedStatefulSet({ ...p, body: p.body }, merge),
      };
    case 'DaemonSet':
      return {
        read: (p: P) => apps.readNamespacedDaemonSet(p),
        patch: (p: P) => apps.patchNamespacedDaemonSet({ ...p, body: p.body }, merge),
      };
  }
}
