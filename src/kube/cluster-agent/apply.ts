// Applying one revision of a delivery inside the cluster, and removing a delivery (docs/multi-cluster.md, "Apply").
//
// apply(): every object of the payload is checked first; if one exists and is not this delivery's (no cofre labels,
// or another delivery's), nothing is written and the error names it. Then each object that differs is written with
// server-side apply (field manager `cofre`), an immutable Secret or ConfigMap whose content changed is replaced
// (delete + create: the API server refuses to change it in place), objects of the delivery the payload no longer
// holds are deleted, and the rollout targets whose pod template does not yet carry this revision are rolled.
// Applying the same revision again finds everything in place and writes nothing (no new rollout).
//
// Messages and results name kinds, namespaces, objects and keys, never a value.
import { AppsV1Api, CoreV1Api, KubernetesObjectApi, PatchStrategy, type KubeConfig } from '@kubernetes/client-node';
import { kubeCode, kubeMessage } from '../operator/errors.js';
import { workloadOps } from '../operator/rollout.js';
import { desiredObject, rolloutPatch, type DesiredObject } from './manifest.js';
import { belongsTo, deliverySelector, FIELD_MANAGER, REVISION_ANNOTATION } from './labels.js';
import {
  checkDeliveryName,
  checkNamespace,
  parsePayload,
  PayloadError,
  type DeliveryPayload,
  type ObjectKind,
  type PayloadObject,
} from './payload.js';

/** A delivery that could not be applied or removed; the message is fit for a report (names, never values). */
export class DeliveryError extends Error {
  override name = 'DeliveryError';
}

export interface ApplyResult {
  /** `Kind/name` of each object written (created, updated or replaced). */
  written: string[];
  /** `Kind/name` of each object deleted because the payload no longer holds it. */
  deleted: string[];
  /** `Kind/name` of each workload rolled. */
  rolled: string[];
}

/** What the agent reads of an existing Secret or ConfigMap. */
interface Existing {
  metadata?: {
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  type?: string;
  immutable?: boolean;
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

type Workload = { spec?: { template?: { metadata?: { annotations?: Record<string, string> } } } };

const sameMap = (a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean => {
  const ea = Object.entries(a ?? {});
  return ea.length === Object.keys(b ?? {}).length && ea.every(([k, v]) => b?.[k] === v);
};

export class DeliveryApplier {
  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;
  private readonly objects: KubernetesObjectApi;

  constructor(
    kc: KubeConfig,
    private readonly log: (msg: string, fields?: object) => void = () => undefined,
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.apps = kc.makeApiClient(AppsV1Api);
    this.objects = KubernetesObjectApi.makeApiClient(kc);
  }

  async apply(delivery: string, namespace: string, revision: number, payload: DeliveryPayload): Promise<ApplyResult> {
    let checked: DeliveryPayload;
    try {
      checkDeliveryName(delivery);
      checkNamespace(namespace);
      if (!Number.isSafeInteger(revision) || revision < 1) throw new PayloadError('a revision is a positive integer');
      checked = parsePayload(payload);
    } catch (err) {
      if (err instanceof PayloadError) throw new DeliveryError(`delivery ${delivery}: ${err.message}`);
      throw err;
    }

    // Everything is checked before anything is written: a refused object leaves the delivery as it was.
    const existing = new Map<PayloadObject, Existing | undefined>();
    const refused: string[] = [];
    for (const obj of checked.objects) {
      const current = await this.read(obj.kind, obj.name, namespace);
      if (current && !belongsTo(current.metadata?.labels, delivery))
        refused.push(`${obj.kind} ${namespace}/${obj.name}`);
      existing.set(obj, current);
    }
    if (refused.length > 0)
      throw new DeliveryError(
        `delivery ${delivery}: ${refused.join(', ')} already exist${refused.length === 1 ? 's' : ''} and ` +
          `${refused.length === 1 ? 'is' : 'are'} not managed by cofre for this delivery; not overwritten`,
      );

    const result: ApplyResult = { written: [], deleted: [], rolled: [] };
    for (const obj of checked.objects) {
      const want = desiredObject(obj, delivery, namespace, revision);
      const current = existing.get(obj);
      if (current && this.same(current, want)) continue;
      if (current && this.mustReplace(current, want)) await this.delete(obj.kind, obj.name, namespace, current);
      // Changed in place only if it is still what was checked: the resourceVersion is the apply's precondition.
      else if (current) want.metadata!.resourceVersion = current.metadata?.resourceVersion;
      await this.write(want);
      result.written.push(`${obj.kind}/${obj.name}`);
    }

    const keep = new Set(checked.objects.map((o) => `${o.kind}/${o.name}`));
    for (const stale of await this.owned(delivery, namespace)) {
      if (keep.has(`${stale.kind}/${stale.name}`)) continue;
      if (await this.delete(stale.kind, stale.name, namespace, stale.object))
        result.deleted.push(`${stale.kind}/${stale.name}`);
    }

    for (const target of checked.rollout) {
      if (await this.roll(target.kind, target.name, namespace, revision))
        result.rolled.push(`${target.kind}/${target.name}`);
    }
    if (result.written.length + result.deleted.length + result.rolled.length > 0)
      this.log('applied', { delivery, namespace, revision, ...result });
    return result;
  }

  /** Deletes every Secret and ConfigMap of the delivery in `namespace` (only those with its labels). */
  async remove(delivery: string, namespace: string): Promise<string[]> {
    try {
      checkDeliveryName(delivery);
      checkNamespace(namespace);
    } catch (err) {
      if (err instanceof PayloadError) throw new DeliveryError(`delivery ${delivery}: ${err.message}`);
      throw err;
    }
    const deleted: string[] = [];
    for (const o of await this.owned(delivery, namespace)) {
      if (await this.delete(o.kind, o.name, namespace, o.object)) deleted.push(`${o.kind}/${o.name}`);
    }
    if (deleted.length > 0) this.log('removed', { delivery, namespace, deleted });
    return deleted;
  }

  private sameContent(current: Existing, want: Existing): boolean {
    return (
      current.type === want.type &&
      sameMap(current.data, want.data) &&
      sameMap(current.binaryData, want.binaryData) &&
      (current.immutable === true) === (want.immutable === true)
    );
  }

  private same(current: Existing, want: Existing): boolean {
    const wantAnnotations = want.metadata!.annotations!;
    return (
      this.sameContent(current, want) &&
      Object.entries(wantAnnotations).every(([k, v]) => current.metadata?.annotations?.[k] === v)
    );
  }

  /** An immutable object cannot take new content (nor become mutable), and a Secret's type never changes. */
  private mustReplace(current: Existing, want: Existing): boolean {
    return (current.immutable === true && !this.sameContent(current, want)) || current.type !== want.type;
  }

  private async read(kind: ObjectKind, name: string, namespace: string): Promise<Existing | undefined> {
    try {
      return kind === 'Secret'
        ? await this.core.readNamespacedSecret({ name, namespace })
        : await this.core.readNamespacedConfigMap({ name, namespace });
    } catch (err) {
      if (kubeCode(err) === 404) return undefined;
      throw new DeliveryError(`reading ${kind} ${namespace}/${name}: ${kubeMessage(err)}`);
    }
  }

  private async write(want: DesiredObject): Promise<void> {
    const { kind, metadata } = want;
    try {
      // force: the object is ours (checked above); fields another manager set on it are taken back.
      await this.objects.patch(want, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
    } catch (err) {
      throw new DeliveryError(`applying ${kind} ${metadata!.namespace}/${metadata!.name}: ${kubeMessage(err)}`);
    }
  }

  /**
   * Deletes one object, only if it is still the one that was read (uid precondition), so an object someone
   * created under the same name meanwhile is left alone. Returns false when it was already gone.
   */
  private async delete(kind: ObjectKind, name: string, namespace: string, current: Existing): Promise<boolean> {
    const body = { preconditions: { uid: current.metadata?.uid } };
    try {
      if (kind === 'Secret') await this.core.deleteNamespacedSecret({ name, namespace, body });
      else await this.core.deleteNamespacedConfigMap({ name, namespace, body });
      return true;
    } catch (err) {
      if (kubeCode(err) === 404) return false;
      throw new DeliveryError(`deleting ${kind} ${namespace}/${name}: ${kubeMessage(err)}`);
    }
  }

  /** Every Secret and ConfigMap in `namespace` that carries the delivery's labels. */
  private async owned(
    delivery: string,
    namespace: string,
  ): Promise<{ kind: ObjectKind; name: string; object: Existing }[]> {
    const labelSelector = deliverySelector(delivery);
    try {
      const secrets = await this.core.listNamespacedSecret({ namespace, labelSelector });
      const configMaps = await this.core.listNamespacedConfigMap({ namespace, labelSelector });
      return [
        ...secrets.items.map((object) => ({ kind: 'Secret' as const, name: object.metadata!.name!, object })),
        ...configMaps.items.map((object) => ({ kind: 'ConfigMap' as const, name: object.metadata!.name!, object })),
      ];
    } catch (err) {
      throw new DeliveryError(`listing the objects of delivery ${delivery} in ${namespace}: ${kubeMessage(err)}`);
    }
  }

  /**
   * Sets the pod-template annotation cofre.dev/revision, which rolls the workload (as `kubectl rollout restart`
   * does with its own annotation) and marks every pod it creates with the revision. Keyed by the revision, it is
   * idempotent. A workload that does not exist (yet) is skipped: when it is created it reads the new objects.
   */
  private async roll(
    kind: 'Deployment' | 'StatefulSet' | 'DaemonSet',
    name: string,
    namespace: string,
    revision: number,
  ) {
    const ops = workloadOps(this.apps, kind);
    let current: Workload;
    try {
      current = (await ops.read({ name, namespace })) as Workload;
    } catch (err) {
      if (kubeCode(err) === 404) return false;
      throw new DeliveryError(`reading ${kind} ${namespace}/${name}: ${kubeMessage(err)}`);
    }
    if (current.spec?.template?.metadata?.annotations?.[REVISION_ANNOTATION] === String(revision)) return false;
    const body = rolloutPatch(revision);
    try {
      await ops.patch({ name, namespace, body });
    } catch (err) {
      throw new DeliveryError(`rolling ${kind} ${namespace}/${name}: ${kubeMessage(err)}`);
    }
    return true;
  }
}
