// One reconcile of one CofreSecret: resolve its connection and identity, make sure the identity's change stream is
// subscribed before reading (so a write right after the read is still pushed), read the source, build the target,
// write it only when its content differs, roll the named workloads, and record the outcome in status and Events.
import {
  CoreV1Api,
  CustomObjectsApi,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';
import type { CofreAccess, Identity } from './cofre-client.js';
import { buildContent, contentHash, existingContent, targetObject, type TargetContent } from './content.js';
import { kubeCode, kubeMessage, SyncError } from './errors.js';
import type { Log } from './log.js';
import { reconcileDuration, reconcileErrors, reconcileTotal, targetWrites } from './metrics.js';
import type { EventRecorder } from './recorder.js';
import type { RolloutRestarter } from './rollout.js';
import { TemplateError } from './template.js';
import {
  FIELD_MANAGER,
  GROUP,
  keyOf,
  VERSION,
  type CofreSecret,
  type CofreSecretStatus,
  type Condition,
} from './types.js';

export interface ReconcileResult {
  /** The identity the object reads with (for the change-stream index), when it got that far. */
  identity?: Identity;
  wrote: boolean;
}

export interface ReconcilerDeps {
  kc: KubeConfig;
  access: CofreAccess;
  recorder: EventRecorder;
  rollout: RolloutRestarter;
  /** Subscribes the identity's change stream (if not yet) and waits, briefly, until it is connected. */
  subscribe: (id: Identity, cofreSecretKey: string) => Promise<void>;
  log: Log;
}

type Target = {
  metadata?: {
    ownerReferences?: { uid?: string; controller?: boolean }[];
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  data?: Record<string, string>;
  type?: string;
  immutable?: boolean;
};

export class Reconciler {
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;
  private readonly objects: KubernetesObjectApi;

  constructor(private readonly deps: ReconcilerDeps) {
    this.core = deps.kc.makeApiClient(CoreV1Api);
    this.custom = deps.kc.makeApiClient(CustomObjectsApi);
    this.objects = KubernetesObjectApi.makeApiClient(deps.kc);
  }

  /** Throws (after recording the failure) so that the work queue retries with back-off. */
  async reconcile(cs: CofreSecret): Promise<ReconcileResult> {
    const end = reconcileDuration.startTimer();
    const ref = `${cs.metadata!.namespace}/${cs.metadata!.name}`;
    let identity: Identity | undefined;
    try {
      identity = await this.deps.access.identity(cs);
      await this.deps.subscribe(identity, keyOf(cs));
      const source = await this.deps.access.read(identity, cs.spec.source);
      let content: TargetContent;
      try {
        content = buildContent(cs, source.data);
      } catch (err) {
        if (err instanceof TemplateError) throw new SyncError('TemplateFailed', err.message);
        throw err;
      }
      const hash = contentHash(content, cs.metadata!.uid!);
      const wrote = await this.writeTarget(cs, content);
      const previous = cs.status?.contentHash;
      const restarted = await this.deps.rollout.restart(cs, hash, Boolean(previous) && previous !== hash);
      const kind = content.kind;
      const message = `${kind} ${cs.spec.target.name} holds ${cs.spec.source.mount}/${cs.spec.source.path}${
        source.version ? ` version ${source.version}` : ''
      }`;
      const changed = await this.setStatus(cs, {
        ready: { status: 'True', reason: 'Synced', message },
        sourceVersion: source.version,
        contentHash: hash,
        synced: wrote || previous !== hash,
      });
      if (wrote) {
        const extra = restarted.length > 0 ? `; restarted ${restarted.join(', ')}` : '';
        await this.deps.recorder.record(cs, 'Normal', 'Synced', `${message}${extra}`);
        this.deps.log('synced', {
          cofreSecret: ref,
          target: `${kind}/${cs.spec.target.name}`,
          version: source.version,
        });
      }
      reconcileTotal.inc({ result: wrote || changed ? 'synced' : 'unchanged' });
      return { identity, wrote };
    } catch (err) {
      const failure =
        err instanceof SyncError ? err : new SyncError('TargetWriteFailed', (err as Error).message ?? String(err));
      reconcileTotal.inc({ result: 'error' });
      reconcileErrors.inc({ reason: failure.reason });
      let changed = false;
      try {
        changed = await this.setStatus(cs, {
          ready: { status: 'False', reason: failure.reason, message: failure.message },
        });
      } catch (statusErr) {
        this.deps.log('could not update status', { cofreSecret: ref, error: kubeMessage(statusErr) }, 'warn');
      }
      // One Warning per distinct failure, not one per retry.
      if (changed) await this.deps.recorder.record(cs, 'Warning', failure.reason, failure.message);
      this.deps.log('sync failed', { cofreSecret: ref, reason: failure.reason, message: failure.message }, 'error');
      throw failure;
    } finally {
      end();
    }
  }

  /** Applies the target when what it holds differs from `content` (or its owner reference is not as wanted). */
  private async writeTarget(cs: CofreSecret, content: TargetContent): Promise<boolean> {
    if (await this.applyFirstSync(cs, content)) return true;
    const namespace = cs.metadata!.namespace!;
    const name = cs.spec.target.name;
    let existing: Target | undefined;
    try {
      existing = (
        content.kind === 'Secret'
          ? await this.core.readNamespacedSecret({ name, namespace })
          : await this.core.readNamespacedConfigMap({ name, namespace })
      ) as Target;
    } catch (err) {
      if (kubeCode(err) !== 404)
        throw new SyncError('TargetWriteFailed', `reading ${content.kind} ${name}: ${kubeMessage(err)}`);
    }
    const wantOwner = (cs.spec.deletionPolicy ?? 'Delete') === 'Delete';
    if (existing) {
      const owners = existing.metadata?.ownerReferences ?? [];
      const owned = owners.some((o) => o.uid === cs.metadata!.uid);
      const otherController = owners.find((o) => o.controller && o.uid !== cs.metadata!.uid);
      if (otherController) {
        throw new SyncError(
          'TargetConflict',
          `${content.kind} ${name} is controlled by another object (uid ${otherController.uid})`,
        );
      }
      const key = cs.metadata!.uid!;
      const same = contentHash(existingContent(existing, content), key) === contentHash(content, key);
      if (same && owned === wantOwner) return false;
      // An immutable object cannot change: replace it (only when the data changed; metadata may still be applied).
      if (existing.immutable && !same) {
        try {
          if (content.kind === 'Secret') await this.core.deleteNamespacedSecret({ name, namespace });
          else await this.core.deleteNamespacedConfigMap({ name, namespace });
        } catch (err) {
          if (kubeCode(err) !== 404)
            throw new SyncError(
              'TargetWriteFailed',
              `replacing immutable ${content.kind} ${name}: ${kubeMessage(err)}`,
            );
        }
      }
    }
    try {
      await this.objects.patch(
        targetObject(cs, content),
        undefined,
        undefined,
        FIELD_MANAGER,
        true,
        PatchStrategy.ServerSideApply,
      );
    } catch (err) {
      throw new SyncError('TargetWriteFailed', `applying ${content.kind} ${name}: ${kubeMessage(err)}`);
    }
    targetWrites.inc({ kind: content.kind });
    return true;
  }

  /**
   * The first sync of a CofreSecret (no content hash in its status) almost always creates its target: it applies at
   * once instead of reading first, without forcing, so a target that exists after all is refused by the API server
   * and taken the careful way (false): fields someone else manages conflict (409), another controller's owner
   * reference or an immutable field is invalid next to ours (422). Only under deletionPolicy Delete, where our
   * controller reference makes another controller's object refuse us.
   */
  private async applyFirstSync(cs: CofreSecret, content: TargetContent): Promise<boolean> {
    if (cs.status?.contentHash || (cs.spec.deletionPolicy ?? 'Delete') !== 'Delete') return false;
    try {
      await this.objects.patch(
        targetObject(cs, content),
        undefined,
        undefined,
        FIELD_MANAGER,
        false,
        PatchStrategy.ServerSideApply,
      );
    } catch (err) {
      if (kubeCode(err) === 409 || kubeCode(err) === 422) return false;
      throw new SyncError('TargetWriteFailed', `applying ${content.kind} ${cs.spec.target.name}: ${kubeMessage(err)}`);
    }
    targetWrites.inc({ kind: content.kind });
    return true;
  }

  /**
   * Writes status through the status subresource, only when something in it changes: an unchanged reconcile must
   * not write (each write is an update event that would enqueue the object again). Returns whether it wrote.
   */
  private async setStatus(
    cs: CofreSecret,
    next: {
      ready: Pick<Condition, 'status' | 'reason' | 'message'>;
      sourceVersion?: number;
      contentHash?: string;
      synced?: boolean;
    },
  ): Promise<boolean> {
    const old = cs.status ?? {};
    const generation = cs.metadata!.generation ?? 0;
    const prevReady = old.conditions?.find((c) => c.type === 'Ready');
    const now = new Date().toISOString();
    const ready: Condition = {
      type: 'Ready',
      ...next.ready,
      observedGeneration: generation,
      lastTransitionTime: prevReady && prevReady.status === next.ready.status ? prevReady.lastTransitionTime : now,
    };
    const status: CofreSecretStatus = {
      observedGeneration: generation,
      conditions: [...(old.conditions ?? []).filter((c) => c.type !== 'Ready'), ready],
    };
    if (next.sourceVersion !== undefined) status.sourceVersion = next.sourceVersion;
    if (next.contentHash !== undefined) status.contentHash = next.contentHash;
    if (next.synced) status.lastSyncTime = now;
    const same =
      old.observedGeneration === generation &&
      prevReady?.status === ready.status &&
      prevReady.reason === ready.reason &&
      prevReady.message === ready.message &&
      prevReady.observedGeneration === generation &&
      (next.sourceVersion === undefined || old.sourceVersion === next.sourceVersion) &&
      (next.contentHash === undefined || old.contentHash === next.contentHash) &&
      !next.synced;
    if (same) return false;
    await this.custom.patchNamespacedCustomObjectStatus(
      {
        group: GROUP,
        version: VERSION,
        namespace: cs.metadata!.namespace!,
        plural: 'cofresecrets',
        name: cs.metadata!.name!,
        body: { status },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    // Keep our copy current, so the next reconcile of this same object (before the informer catches up) compares
    // against what was just written.
    cs.status = { ...old, ...status };
    return true;
  }
}
