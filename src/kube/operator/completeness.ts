// Rotation completeness: for each workload a CofreSecret rolls, how many of its pods carry the current content
// revision and how many an older one. A pod carries the revision its pod template had when it was created (the
// template's annotations are copied onto the pod), so counting the pods' own cofre.dev/content-hash is exact for
// every kind. Pods are those that exist, running or not: a Pending pod of the new revision counts as current, a
// Terminating one of an older revision as outdated (it may still be connected with the old credential).
import {
  AppsV1Api,
  CoreV1Api,
  type KubeConfig,
  type V1LabelSelector,
  type V1OwnerReference,
} from '@kubernetes/client-node';
import { kubeCode, kubeMessage } from './errors.js';
import { ROLLOUT_ANNOTATION, type RolloutTarget, type TargetRolloutStatus } from './types.js';

export interface TargetProgress extends TargetRolloutStatus {
  /** Every pod is on the revision and the workload's controller has as many of them as it wants. */
  settled: boolean;
}

/** A label selector as the API's labelSelector query string. */
export function selectorString(sel: V1LabelSelector | undefined): string {
  const parts = Object.entries(sel?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of sel?.matchExpressions ?? []) {
    const values = (e.values ?? []).join(',');
    if (e.operator === 'In') parts.push(`${e.key} in (${values})`);
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${values})`);
    else if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
  }
  return parts.join(',');
}

export class Completeness {
  private readonly apps: AppsV1Api;
  private readonly core: CoreV1Api;
  constructor(kc: KubeConfig) {
    this.apps = kc.makeApiClient(AppsV1Api);
    this.core = kc.makeApiClient(CoreV1Api);
  }

  /**
   * The progress of one workload towards `revision`; undefined when the workload does not exist or its pod template
   * does not carry the revision (never rolled by this CofreSecret, or rolled on since by another one naming it).
   */
  async progress(namespace: string, target: RolloutTarget, revision: string): Promise<TargetProgress | undefined> {
    try {
      return await this.measure(namespace, target, revision);
    } catch (err) {
      if (kubeCode(err) === 404) return undefined;
      throw new Error(`reading the pods of ${target.kind} ${target.name}: ${kubeMessage(err)}`);
    }
  }

  private async measure(namespace: string, t: RolloutTarget, revision: string): Promise<TargetProgress | undefined> {
    let uid: string | undefined;
    let selector: V1LabelSelector | undefined;
    let desired: number;
    let observed: boolean;
    let stamped: string | undefined;
    if (t.kind === 'Deployment') {
      const d = await this.apps.readNamespacedDeployment({ name: t.name, namespace });
      stamped = d.spec?.template.metadata?.annotations?.[ROLLOUT_ANNOTATION];
      ({ uid } = d.metadata!);
      selector = d.spec?.selector;
      desired = d.spec?.replicas ?? 1;
      observed = (d.status?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0);
    } else if (t.kind === 'StatefulSet') {
      const s = await this.apps.readNamespacedStatefulSet({ name: t.name, namespace });
      stamped = s.spec?.template.metadata?.annotations?.[ROLLOUT_ANNOTATION];
      ({ uid } = s.metadata!);
      selector = s.spec?.selector;
      desired = s.spec?.replicas ?? 1;
      observed = (s.status?.observedGeneration ?? 0) >= (s.metadata?.generation ?? 0);
    } else {
      const ds = await this.apps.readNamespacedDaemonSet({ name: t.name, namespace });
      stamped = ds.spec?.template.metadata?.annotations?.[ROLLOUT_ANNOTATION];
      ({ uid } = ds.metadata!);
      selector = ds.spec?.selector;
      desired = ds.status?.desiredNumberScheduled ?? 0;
      observed = (ds.status?.observedGeneration ?? 0) >= (ds.metadata?.generation ?? 0);
    }
    if (stamped !== revision) return undefined;
    const labelSelector = selectorString(selector);
    // A Deployment owns ReplicaSets, which own the pods; the other kinds own their pods directly.
    const owners = new Set<string>([uid!]);
    if (t.kind === 'Deployment') {
      const sets = await this.apps.listNamespacedReplicaSet({ namespace, labelSelector });
      for (const rs of sets.items) if (ownedBy(rs.metadata?.ownerReferences, uid)) owners.add(rs.metadata!.uid!);
    }
    const pods = await this.core.listNamespacedPod({ namespace, labelSelector });
    let currentPods = 0;
    let outdatedPods = 0;
    for (const pod of pods.items) {
      if (!pod.metadata?.ownerReferences?.some((o) => o.controller && owners.has(o.uid))) continue;
      if (pod.metadata.annotations?.[ROLLOUT_ANNOTATION] === revision) currentPods++;
      else outdatedPods++;
    }
    return {
      kind: t.kind,
      name: t.name,
      currentPods,
      outdatedPods,
      settled: observed && outdatedPods === 0 && currentPods >= desired,
    };
  }
}

function ownedBy(refs: V1OwnerReference[] | undefined, uid: string | undefined): boolean {
  return (refs ?? []).some((o) => o.controller && o.uid === uid);
}
