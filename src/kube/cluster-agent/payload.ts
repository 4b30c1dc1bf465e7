// The opened payload of a bundle (docs/multi-cluster.md, "Fetch"): the objects a delivery holds in its namespace
// and the workloads to roll. It comes from a bundle only this cluster could open, but it is still checked field by
// field before anything reaches the API server; a message names the field that is wrong, never a value.

export type ObjectKind = 'Secret' | 'ConfigMap';
export type RolloutKind = 'Deployment' | 'StatefulSet' | 'DaemonSet';

export interface PayloadObject {
  kind: ObjectKind;
  name: string;
  /** A Secret's type (default Opaque). */
  type?: string;
  immutable?: boolean;
  /**
   * A Secret whose values were asked for as environment variables or in-memory files: the in-pod delivery those
   * need has not landed, so the agent writes the Secret and says so in its report.
   */
  mode?: InPodMode;
  /** Key → value, base64. */
  data: Record<string, string>;
}

export type InPodMode = 'env' | 'file';

export interface RolloutTarget {
  kind: RolloutKind;
  name: string;
}

export interface DeliveryPayload {
  objects: PayloadObject[];
  rollout: RolloutTarget[];
}

export class PayloadError extends Error {
  override name = 'PayloadError';
}

// Kubernetes' own rules: an object name is a DNS subdomain, a data key is [-._a-zA-Z0-9]+ (at most 253), a label
// value (the delivery's name, in the cofre.dev/delivery label) at most 63 alphanumerics, '-', '_' or '.'.
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DATA_KEY = /^[-._a-zA-Z0-9]+$/;
const LABEL_VALUE = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const OBJECT_KINDS: readonly string[] = ['Secret', 'ConfigMap'];
const ROLLOUT_KINDS: readonly string[] = ['Deployment', 'StatefulSet', 'DaemonSet'];
const IN_POD_MODES: readonly unknown[] = ['env', 'file'];

export function checkDeliveryName(delivery: string): void {
  if (delivery.length > 63 || !LABEL_VALUE.test(delivery))
    throw new PayloadError(`delivery name ${JSON.stringify(delivery)} is not a Kubernetes label value`);
}

export function checkNamespace(namespace: string): void {
  if (namespace.length > 63 || !DNS_LABEL.test(namespace))
    throw new PayloadError(`namespace ${JSON.stringify(namespace)} is not a Kubernetes namespace name`);
}

function checkName(name: unknown, where: string): string {
  if (typeof name !== 'string' || name.length > 253 || !DNS_SUBDOMAIN.test(name))
    throw new PayloadError(`${where}: name is not a Kubernetes object name`);
  return name;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Checks a decoded payload's shape; returns it typed. */
export function parsePayload(value: unknown): DeliveryPayload {
  if (!isRecord(value)) throw new PayloadError('the payload is not an object');
  const { objects, rollout } = value;
  if (!Array.isArray(objects)) throw new PayloadError('payload.objects is not a list');
  if (rollout !== undefined && !Array.isArray(rollout)) throw new PayloadError('payload.rollout is not a list');
  const seen = new Set<string>();
  const outObjects = objects.map((o: unknown, i): PayloadObject => {
    const where = `payload.objects[${i}]`;
    if (!isRecord(o)) throw new PayloadError(`${where} is not an object`);
    if (typeof o.kind !== 'string' || !OBJECT_KINDS.includes(o.kind))
      throw new PayloadError(`${where}.kind is not Secret or ConfigMap`);
    const kind = o.kind as ObjectKind;
    const name = checkName(o.name, where);
    if (seen.has(`${kind}/${name}`)) throw new PayloadError(`${where}: ${kind} ${name} appears twice`);
    seen.add(`${kind}/${name}`);
    if (o.type !== undefined && (kind !== 'Secret' || typeof o.type !== 'string' || o.type === ''))
      throw new PayloadError(`${where}.type is only a non-empty string on a Secret`);
    if (o.immutable !== undefined && typeof o.immutable !== 'boolean')
      throw new PayloadError(`${where}.immutable is not a boolean`);
    if (o.mode !== undefined && (kind !== 'Secret' || !IN_POD_MODES.includes(o.mode as string)))
      throw new PayloadError(`${where}.mode is only "env" or "file", on a Secret`);
    if (!isRecord(o.data)) throw new PayloadError(`${where}.data is not an object`);
    const data: Record<string, string> = {};
    for (const [key, v] of Object.entries(o.data)) {
      if (key.length > 253 || !DATA_KEY.test(key))
        throw new PayloadError(`${where}.data: a key is not a valid data key`);
      if (typeof v !== 'string' || Buffer.from(v, 'base64').toString('base64') !== v)
        throw new PayloadError(`${where}.data.${key} is not base64`);
      data[key] = v;
    }
    const out: PayloadObject = { kind, name, data };
    if (o.type !== undefined) out.type = o.type as string;
    if (o.immutable !== undefined) out.immutable = o.immutable;
    if (o.mode !== undefined) out.mode = o.mode as InPodMode;
    return out;
  });
  const outRollout = (rollout ?? []).map((r: unknown, i): RolloutTarget => {
    const where = `payload.rollout[${i}]`;
    if (!isRecord(r)) throw new PayloadError(`${where} is not an object`);
    if (typeof r.kind !== 'string' || !ROLLOUT_KINDS.includes(r.kind))
      throw new PayloadError(`${where}.kind is not Deployment, StatefulSet or DaemonSet`);
    return { kind: r.kind as RolloutKind, name: checkName(r.name, where) };
  });
  return { objects: outObjects, rollout: outRollout };
}
