// The labels and annotations by which the cluster agent marks what it creates (docs/multi-cluster.md, "Apply"). The
// managed-by label is the operator's own (src/kube/operator/content.ts); the delivery label is what tells the agent
// an object is its to change or delete: only objects carrying both are ever touched.
import { MANAGED_BY } from '../operator/content.js';

export { FIELD_MANAGER } from '../operator/types.js';
export { MANAGED_BY };
export const DELIVERY_LABEL = 'cofre.dev/delivery';
/** On each applied object (the revision it holds), each rolled pod template and so on each pod created from it. */
export const REVISION_ANNOTATION = 'cofre.dev/revision';

export function deliveryLabels(delivery: string): Record<string, string> {
  return { ...MANAGED_BY, [DELIVERY_LABEL]: delivery };
}

/** The label selector of every object of one delivery. */
export function deliverySelector(delivery: string): string {
  return Object.entries(deliveryLabels(delivery))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** True when an object carries the agent's labels for this delivery. */
export function belongsTo(labels: Record<string, string> | undefined, delivery: string): boolean {
  return Object.entries(deliveryLabels(delivery)).every(([k, v]) => labels?.[k] === v);
}
/**
 * On a Secret whose values were asked for as environment variables or in-memory files (`env`, `file`): written as a
 * Secret because in-pod delivery is not available yet; the annotation keeps what was asked for visible in the cluster.
 */
export const REQUESTED_MODE_ANNOTATION = 'cofre.dev/requested-mode';
