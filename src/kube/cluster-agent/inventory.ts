// What the agent has delivered, as the cluster itself records it: the delivery label and revision annotation on
// every object it applied. An agent that restarts has no memory of its own; on the stream's `hello` it compares
// this inventory with the full set the server sends, and removes what is no longer published to the cluster.
import { CoreV1Api, type KubeConfig, type V1ObjectMeta } from '@kubernetes/client-node';
import { kubeMessage } from '../operator/errors.js';
import { DELIVERY_LABEL, MANAGED_BY, REVISION_ANNOTATION } from './labels.js';

export interface DeliveredHere {
  delivery: string;
  namespace: string;
  /** The lowest revision any of its objects carries (a delivery half-way through a change shows its older one). */
  revision: number;
}

const SELECTOR = `${Object.entries(MANAGED_BY)
  .map(([k, v]) => `${k}=${v}`)
  .join(',')},${DELIVERY_LABEL}`;

/**
 * Every (delivery, namespace) with at least one Secret or ConfigMap carrying the agent's labels. Cluster-wide, or in
 * `namespaces` only when the agent's RBAC is limited to those.
 */
export async function deliveredHere(kc: KubeConfig, namespaces?: string[]): Promise<DeliveredHere[]> {
  const core = kc.makeApiClient(CoreV1Api);
  const metas: V1ObjectMeta[] = [];
  const collect = (items: { metadata?: V1ObjectMeta }[]) => {
    for (const i of items) if (i.metadata) metas.push(i.metadata);
  };
  try {
    if (namespaces) {
      for (const namespace of namespaces) {
        collect((await core.listNamespacedSecret({ namespace, labelSelector: SELECTOR })).items);
        collect((await core.listNamespacedConfigMap({ namespace, labelSelector: SELECTOR })).items);
      }
    } else {
      collect((await core.listSecretForAllNamespaces({ labelSelector: SELECTOR })).items);
      collect((await core.listConfigMapForAllNamespaces({ labelSelector: SELECTOR })).items);
    }
  } catch (err) {
    throw new Error(`listing what cofre delivered to this cluster: ${kubeMessage(err)}`);
  }
  const found = new Map<string, DeliveredHere>();
  for (const m of metas) {
    const delivery = m.labels![DELIVERY_LABEL]!;
    const namespace = m.namespace!;
    const revision = Number(m.annotations?.[REVISION_ANNOTATION] ?? 0) || 0;
    const key = JSON.stringify([delivery, namespace]);
    const seen = found.get(key);
    if (!seen || revision < seen.revision) found.set(key, { delivery, namespace, revision });
  }
  return [...found.values()];
}
