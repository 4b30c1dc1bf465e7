// The lifecycle map of one delivery in this cluster (docs/multi-cluster.md, "Report"): how many pods of its rollout
// targets run each revision. A rollout sets the pod-template annotation cofre.dev/revision, so every pod created from
// that template carries the revision it was started with; counting the annotation over the pods a workload selects
// shows old and new pods side by side while a rollout is under way.
import { AppsV1Api, CoreV1Api, type KubeConfig, type V1LabelSelector } from '@kubernetes/client-node';
import { kubeCode, kubeMessage } from '../operator/errors.js';
import { workloadOps } from '../operator/rollout.js';
import { REVISION_ANNOTATION } from './labels.js';
import type { RolloutTarget } from './payload.js';

/** Revision (as the annotation spells it) → number of pods. */
export type LifecycleMap = Record<string, number>;

export class LifecycleError extends Error {
  override name = 'LifecycleError';
}

/** A label selector in the query syntax of `?labelSelector=` (matchLabels and matchExpressions, ANDed). */
export function selectorQuery(selector: V1LabelSelector): string {
  const parts = Object.entries(selector.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of selector.matchExpressions ?? []) {
    const values = `(${(e.values ?? []).join(',')})`;
    switch (e.operator) {
      case 'In':
        parts.push(`${e.key} in ${values}`);
        break;
      case 'NotIn':
        parts.push(`${e.key} notin ${values}`);
        break;
      case 'Exists':
        parts.push(e.key);
        break;
      case 'DoesNotExist':
        parts.push(`!${e.key}`);
        break;
      default:
        throw new LifecycleError(`unknown label selector operator ${e.operator}`);
    }
  }
  return parts.join(',');
}

export class LifecycleReader {
  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;

  constructor(kc: KubeConfig) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.apps = kc.makeApiClient(AppsV1Api);
  }

  /**
   * Counts, over the pods the rollout targets select (each pod once, however many targets select it), the
   * cofre.dev/revision annotation. Pods that have finished (Succeeded, Failed) run nothing and are not counted,
   * nor are pods without the annotation (started before the delivery first rolled them). A target that does not
   * exist counts nothing.
   */
  async read(namespace: string, rollout: RolloutTarget[]): Promise<LifecycleMap> {
    const seen = new Set<string>();
    const counts: LifecycleMap = {};
    for (const target of rollout) {
      let selector: V1LabelSelector | undefined;
      try {
        const workload = await workloadOps(this.apps, target.kind).read({ name: target.name, namespace });
        selector = workload.spec?.selector;
      } catch (err) {
        if (kubeCode(err) === 404) continue;
        throw new LifecycleError(`reading ${target.kind} ${namespace}/${target.name}: ${kubeMessage(err)}`);
      }
      const labelSelector = selector ? selectorQuery(selector) : '';
      // An empty selector would match every pod of the namespace; a workload always has one, but never guess.
      if (!labelSelector) continue;
      let pods;
      try {
        pods = await this.core.listNamespacedPod({ namespace, labelSelector });
      } catch (err) {
        throw new LifecycleError(`listing the pods of ${target.kind} ${namespace}/${target.name}: ${kubeMessage(err)}`);
      }
      for (const pod of pods.items) {
        const uid = pod.metadata?.uid ?? `${pod.metadata?.name}`;
        if (seen.has(uid)) continue;
        seen.add(uid);
        if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') continue;
        const revision = pod.metadata?.annotations?.[REVISION_ANNOTATION];
        if (revision === undefined) continue;
        counts[revision] = (counts[revision] ?? 0) + 1;
      }
    }
    return counts;
  }
}
