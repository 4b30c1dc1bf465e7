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
import type { Completeness, TargetProgress } from './completeness.js';
import {
  buildContent,
  canonical,
  contentHash,
  existingContent,
  targetObject,
  targetShape,
  writtenBy,
  type TargetContent,
} from './content.js';
import { parseDuration } from './duration.js';
import type { DynamicLeases } from './dynamic.js';
import { kubeCode, kubeMessage, SyncError } from './errors.js';
import {
  forgetCofreSecret,
  outdatedPods,
  reconcileDuration,
  reconcileErrors,
  reconcileTotal,
  rolloutFinished,
  rolloutsStuck,
  targetWrites,
} from './metrics.js';
import type { Log } from './log.js';
import type { EventRecorder } from './recorder.js';
import type { RolloutCoordinator } from './rollout.js';
import { readPath, type IssuedCredential } from './sources.js';
import { TemplateError } from './template.js';
import {
  ADOPT_ANNOTATION,
  FIELD_MANAGER,
  WRITER_ANNOTATION,
  GROUP,
  keyOf,
  LEASE_FINALIZER,
  VERSION,
  type CofreSecret,
  type CofreSecretStatus,
  type Condition,
  type HeldLeaseStatus,
  type RetiredLeaseStatus,
  type RolloutStatus,
} from './types.js';

export interface ReconcileResult {
  /** The identity the object reads with (for the change-stream index), when it got that far. */
  identity?: Identity;
  wrote: boolean;
  /** Reconcile again within this long: a rollout to follow, or a lease to renew, replace or revoke. */
  followUpMs?: number;
}

export interface ReconcilerDeps {
  kc: KubeConfig;
  access: CofreAccess;
  recorder: EventRecorder;
  rollouts: RolloutCoordinator;
  completeness: Completeness;
  leases: DynamicLeases;
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

/** While a rollout runs, its pods are counted this often; once it is reported stuck, less often. */
const FOLLOW_ROLLOUT_MS = 2_000;
const FOLLOW_STUCK_MS = 10_000;
const DEFAULT_ROLLOUT_TIMEOUT_MS = 10 * 60_000;

type ConditionUpdate = Pick<Condition, 'status' | 'reason' | 'message'>;

const FINISHED: ConditionUpdate = {
  status: 'True',
  reason: 'RolloutFinished',
  message: 'every pod of the targets carries the current revision',
};

interface StatusUpdate {
  ready: ConditionUpdate;
  rolloutComplete?: ConditionUpdate;
  sourceVersion?: number;
  contentHash?: string;
  rollout?: RolloutStatus;
  lease?: HeldLeaseStatus;
  retiredLeases?: RetiredLeaseStatus[];
  synced?: boolean;
}

interface RolloutState {
  status?: RolloutStatus;
  condition?: ConditionUpdate;
  /** Every pod of every target carries the current content. */
  rolledOut: boolean;
  followUpMs?: number;
}

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
    const { mount, path } = cs.spec.source;
    const type = cs.spec.source.type ?? 'kv';
    let identity: Identity | undefined;
    /** A credential issued by this reconcile and not yet on record: revoked if the reconcile fails. */
    let unrecorded: IssuedCredential | undefined;
    try {
      identity = await this.deps.access.identity(cs);
      const next: Partial<StatusUpdate> = {};
      let content: TargetContent | undefined;
      let hash: string;
      let message: string;
      let issuedWhy: string | undefined;
      if (type === 'dynamic') {
        await this.ensureFinalizer(cs);
        const intact = await this.targetHolds(cs, cs.status?.contentHash);
        const kept = await this.deps.leases.keep(cs, identity, intact);
        if (kept.issued) {
          unrecorded = kept.issued;
          issuedWhy = kept.why;
          content = this.build(cs, kept.issued.data);
        }
        hash = content ? contentHash(content, cs.metadata!.uid!) : cs.status!.contentHash!;
        for (const r of kept.retired) if (r.replacedBy === '') r.replacedBy = hash;
        next.lease = kept.lease;
        next.retiredLeases = kept.retired;
        message = `${cs.spec.target.kind ?? 'Secret'} ${cs.spec.target.name} holds a credential of ${mount}/${path}`;
      } else {
        await this.deps.subscribe(identity, keyOf(cs));
        const source =
          type === 'kv'
            ? await this.deps.access.read(identity, cs.spec.source)
            : await readPath(this.deps.access, identity, cs.spec.source);
        content = this.build(cs, source.data);
        hash = contentHash(content, cs.metadata!.uid!);
        next.sourceVersion = source.version;
        message = `${content.kind} ${cs.spec.target.name} holds ${mount}/${path}${
          source.version ? ` version ${source.version}` : ''
        }`;
      }
      const wrote = content ? await this.writeTarget(cs, content) : false;
      const previous = cs.status?.contentHash;
      const rollout = await this.followRollout(cs, hash);
      let followUpMs = rollout.followUpMs;
      if (type === 'dynamic') {
        next.retiredLeases = await this.deps.leases.tendRetired(identity, next.retiredLeases ?? [], rollout.rolledOut);
        const at = this.deps.leases.nextAt(next.lease, next.retiredLeases);
        if (at !== undefined) followUpMs = Math.min(followUpMs ?? Infinity, Math.max(0, at - Date.now()));
      }
      const changed = await this.setStatus(cs, {
        ...next,
        ready: { status: 'True', reason: 'Synced', message },
        rolloutComplete: rollout.condition,
        rollout: rollout.status,
        contentHash: hash,
        synced: wrote || previous !== hash,
      });
      unrecorded = undefined;
      if (wrote) {
        const why = issuedWhy ? ` (${issuedWhy})` : '';
        await this.deps.recorder.record(cs, 'Normal', 'Synced', `${message}${why}`);
        this.deps.log('synced', {
          cofreSecret: ref,
          target: `${cs.spec.target.kind ?? 'Secret'}/${cs.spec.target.name}`,
        });
      }
      reconcileTotal.inc({ result: wrote || changed ? 'synced' : 'unchanged' });
      return { identity, wrote, followUpMs };
    } catch (err) {
      if (unrecorded && identity) await this.deps.leases.discard(identity, unrecorded);
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

  private build(cs: CofreSecret, data: Record<string, unknown>): TargetContent {
    try {
      return buildContent(cs, data);
    } catch (err) {
      if (err instanceof TemplateError) throw new SyncError('TemplateFailed', err.message);
      throw err;
    }
  }

  /**
   * Asks for the targets to roll when the content moved on from the revision they were rolled to, and measures
   * how far the rollout is: per target, the pods on the current revision and on older ones. A revision already
   * rolled to is never asked for again, so an operator restart or a resync with unchanged content restarts nothing.
   */
  private async followRollout(cs: CofreSecret, hash: string): Promise<RolloutState> {
    const key = keyOf(cs);
    const namespace = cs.metadata!.namespace!;
    const name = cs.metadata!.name!;
    const targets = cs.spec.rolloutRestartTargets ?? [];
    const old = cs.status?.rollout;
    if (targets.length === 0) {
      forgetCofreSecret(namespace, name);
      return { rolledOut: false };
    }
    // Before rollouts were recorded (no RolloutComplete condition yet), a sync rolled its targets at once: the
    // content hash was what they carry.
    const recorded = cs.status?.conditions?.some((c) => c.type === 'RolloutComplete');
    const rolledTo = old?.revision ?? (recorded ? undefined : cs.status?.contentHash);
    let status: RolloutStatus;
    if (rolledTo !== hash) {
      const outcome = this.deps.rollouts.takeOutcome(key);
      if (outcome?.hash !== hash) {
        this.deps.rollouts.request(cs, key, hash, cs.status?.contentHash === undefined);
        // The coordinator enqueues this object once the batch window (and the namespace's turn) has come.
        return {
          status: old,
          rolledOut: false,
          condition: {
            status: 'False',
            reason: 'RolloutPending',
            message: 'the content changed; the rollout waits for its batch window or the namespace rate limit',
          },
        };
      }
      if (outcome.failures.length > 0) throw new SyncError('RolloutFailed', outcome.failures.join('; '));
      if (outcome.restarted.length > 0) {
        await this.deps.recorder.record(cs, 'Normal', 'RolloutStarted', `restarted ${outcome.restarted.join(', ')}`);
      }
      status = { revision: hash, startedTime: new Date(outcome.at).toISOString() };
    } else {
      status = { ...(old ?? { revision: hash }) };
      if (status.finishedTime) {
        return { status, rolledOut: true, condition: FINISHED };
      }
    }
    const progress: TargetProgress[] = [];
    for (const t of targets) {
      const p = await this.deps.completeness.progress(namespace, t, hash).catch((err: unknown) => {
        throw new SyncError('RolloutFailed', (err as Error).message);
      });
      if (p) progress.push(p);
    }
    status.targets = progress.map(({ settled: _settled, ...t }) => t);
    const outdated = progress.reduce((n, p) => n + p.outdatedPods, 0);
    outdatedPods.set({ namespace, cofresecret: name }, outdated);
    if (progress.every((p) => p.settled)) {
      const now = new Date();
      status.finishedTime = now.toISOString();
      rolloutFinished.set({ namespace, cofresecret: name }, now.getTime() / 1000);
      return { status, rolledOut: true, condition: FINISHED };
    }
    rolloutFinished.remove({ namespace, cofresecret: name });
    const behind = progress
      .filter((p) => !p.settled)
      .map((p) => `${p.kind}/${p.name}: ${p.outdatedPods} pods on an older revision, ${p.currentPods} current`)
      .join('; ');
    const timeout =
      (cs.spec.rolloutTimeout ? parseDuration(cs.spec.rolloutTimeout) : undefined) ?? DEFAULT_ROLLOUT_TIMEOUT_MS;
    const started = status.startedTime ? Date.parse(status.startedTime) : Date.now();
    if (Date.now() - started > timeout) {
      const prev = cs.status?.conditions?.find((c) => c.type === 'RolloutComplete');
      const message = `the rollout did not finish within ${cs.spec.rolloutTimeout ?? '10m'}: ${behind}`;
      if (prev?.reason !== 'RolloutStuck') {
        rolloutsStuck.inc();
        await this.deps.recorder.record(cs, 'Warning', 'RolloutStuck', message);
      }
      return {
        status,
        rolledOut: false,
        followUpMs: FOLLOW_STUCK_MS,
        condition: { status: 'False', reason: 'RolloutStuck', message },
      };
    }
    return {
      status,
      rolledOut: false,
      followUpMs: FOLLOW_ROLLOUT_MS,
      condition: { status: 'False', reason: 'RollingOut', message: behind },
    };
  }

  /** Whether the target still holds the content `hash` says (dynamic sources: its value is nowhere else). */
  /** The target Secret or ConfigMap as it is now; undefined when there is none. */
  private async readTarget(kind: 'Secret' | 'ConfigMap', namespace: string, name: string): Promise<Target | undefined> {
    try {
      return (
        kind === 'Secret'
          ? await this.core.readNamespacedSecret({ name, namespace })
          : await this.core.readNamespacedConfigMap({ name, namespace })
      ) as Target;
    } catch (err) {
      if (kubeCode(err) === 404) return undefined;
      throw new SyncError('TargetWriteFailed', `reading ${kind} ${name}: ${kubeMessage(err)}`);
    }
  }

  /**
   * Whether the CofreSecret that wrote `existing` no longer exists: a target kept by deletionPolicy Retain is taken
   * over by the next CofreSecret that names it (recreated by GitOps, or replacing the first). Read from the API
   * server, not the informer's cache, which may still hold a CofreSecret that is gone.
   */
  private async writerGone(existing: Target, namespace: string): Promise<boolean> {
    const writer = existing.metadata?.annotations?.[WRITER_ANNOTATION];
    if (!writer) return false;
    let list: { items?: CofreSecret[] };
    try {
      list = (await this.custom.listNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: 'cofresecrets',
      })) as { items?: CofreSecret[] };
    } catch (err) {
      throw new SyncError(
        'TargetWriteFailed',
        `listing the CofreSecrets of namespace ${namespace}: ${kubeMessage(err)}`,
      );
    }
    return !(list.items ?? []).some((other) => other.metadata?.uid === writer);
  }

  private async targetHolds(cs: CofreSecret, hash: string | undefined): Promise<boolean> {
    if (!hash) return false;
    const shape = targetShape(cs);
    const name = cs.spec.target.name;
    const namespace = cs.metadata!.namespace!;
    const existing = await this.readTarget(shape.kind, namespace, name);
    if (!existing) return false;
    return contentHash(existingContent(existing, shape), cs.metadata!.uid!) === hash;
  }

  /** A dynamic CofreSecret holds a lease: its deletion waits for the revocation (finalize). */
  private async ensureFinalizer(cs: CofreSecret): Promise<void> {
    const finalizers = cs.metadata!.finalizers ?? [];
    if (finalizers.includes(LEASE_FINALIZER)) return;
    await this.patchFinalizers(cs, [...finalizers, LEASE_FINALIZER]);
  }

  /**
   * The CofreSecret is being deleted: revoke every lease it holds (the database drops the roles), then let it go.
   * Without its connection or its login (the namespace is being deleted with its service account) there is no one
   * to revoke with: the leases then end at their TTL, nobody renewing them, and the object goes rather than hold
   * its namespace's deletion. A server that does not answer is retried with back-off.
   */
  async finalize(cs: CofreSecret): Promise<void> {
    const finalizers = cs.metadata!.finalizers ?? [];
    if (!finalizers.includes(LEASE_FINALIZER)) return;
    const ref = `${cs.metadata!.namespace}/${cs.metadata!.name}`;
    try {
      const identity = await this.deps.access.identity(cs);
      await this.deps.leases.revokeAll(identity, cs);
      this.deps.log('revoked the leases of a deleted CofreSecret', { cofreSecret: ref });
    } catch (err) {
      const reason = err instanceof SyncError ? err.reason : undefined;
      const message = (err as Error).message;
      if (reason !== 'ConnectionNotFound' && reason !== 'LoginFailed') {
        this.deps.log('revoking the leases of a deleted CofreSecret failed', { cofreSecret: ref, error: message });
        await this.deps.recorder.record(cs, 'Warning', 'RevokeFailed', message);
        throw err;
      }
      await this.deps.recorder.record(cs, 'Warning', 'RevokeFailed', `${message}; its leases end at their TTL`);
    }
    await this.patchFinalizers(
      cs,
      finalizers.filter((f) => f !== LEASE_FINALIZER),
    );
  }

  private async patchFinalizers(cs: CofreSecret, finalizers: string[]): Promise<void> {
    try {
      await this.custom.patchNamespacedCustomObject(
        {
          group: GROUP,
          version: VERSION,
          namespace: cs.metadata!.namespace!,
          plural: 'cofresecrets',
          name: cs.metadata!.name!,
          // resourceVersion: a concurrent change of the list (another controller's finalizer) is not overwritten.
          body: { metadata: { finalizers, resourceVersion: cs.metadata!.resourceVersion } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    } catch (err) {
      throw new SyncError('TargetWriteFailed', `updating the finalizers: ${kubeMessage(err)}`);
    }
    cs.metadata!.finalizers = finalizers;
  }

  /**
   * Applies the target when what it holds differs from `content` (or its owner reference is not as wanted). An
   * existing object is written only if this CofreSecret wrote it (writtenBy): every CofreSecret applies as the same
   * field manager, so server-side apply alone let a second one take a first one's Secret over (its deletion then
   * deleted it), and a Secret made by hand or by Helm was adopted, overwritten, and deleted with the CofreSecret.
   */
  private async writeTarget(cs: CofreSecret, content: TargetContent): Promise<boolean> {
    const namespace = cs.metadata!.namespace!;
    const name = cs.spec.target.name;
    const existing = await this.readTarget(content.kind, namespace, name);
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
      const holdsLastSync = () =>
        contentHash(existingContent(existing, targetShape(cs)), cs.metadata!.uid!) === cs.status?.contentHash;
      if (!owned && !writtenBy(existing, cs, holdsLastSync) && !(await this.writerGone(existing, namespace))) {
        throw new SyncError(
          'TargetConflict',
          `${content.kind} ${name} exists and was not written by this CofreSecret: delete it, or annotate it ` +
            `${ADOPT_ANNOTATION}=true to hand it over`,
        );
      }
      const key = cs.metadata!.uid!;
      const same = contentHash(existingContent(existing, content), key) === contentHash(content, key);
      // A target written before targets named their writer is written again once, to name it.
      const named = existing.metadata?.annotations?.[WRITER_ANNOTATION] === key;
      if (same && owned === wantOwner && named) return false;
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
   * Writes status through the status subresource, only when something in it changes: an unchanged reconcile must
   * not write (each write is an update event that would enqueue the object again). Returns whether it wrote.
   */
  private async setStatus(cs: CofreSecret, next: StatusUpdate): Promise<boolean> {
    const old = cs.status ?? {};
    const generation = cs.metadata!.generation ?? 0;
    const now = new Date().toISOString();
    const condition = (type: string, update: ConditionUpdate): Condition => {
      const prev = old.conditions?.find((c) => c.type === type);
      return {
        type,
        ...update,
        observedGeneration: generation,
        lastTransitionTime: prev && prev.status === update.status ? prev.lastTransitionTime : now,
      };
    };
    const replaced = new Map<string, Condition>([['Ready', condition('Ready', next.ready)]]);
    if (next.rolloutComplete) replaced.set('RolloutComplete', condition('RolloutComplete', next.rolloutComplete));
    const status: CofreSecretStatus = {
      observedGeneration: generation,
      conditions: [...(old.conditions ?? []).filter((c) => !replaced.has(c.type)), ...replaced.values()],
    };
    if (next.sourceVersion !== undefined) status.sourceVersion = next.sourceVersion;
    if (next.contentHash !== undefined) status.contentHash = next.contentHash;
    if (next.rollout !== undefined) status.rollout = next.rollout;
    if (next.lease !== undefined) status.lease = next.lease;
    if (next.retiredLeases !== undefined) status.retiredLeases = next.retiredLeases;
    if (next.synced) status.lastSyncTime = now;
    const merged: CofreSecretStatus = { ...old, ...status };
    const comparable = (s: CofreSecretStatus) =>
      canonical({
        ...s,
        lastSyncTime: undefined,
        conditions: (s.conditions ?? []).map((c) => ({ ...c, lastTransitionTime: undefined })),
      });
    if (!next.synced && comparable(merged) === comparable(old)) return false;
    // A merge patch merges objects: a rollout's finishedTime of the previous revision must be removed explicitly.
    const body: Record<string, unknown> = { ...status };
    if (status.rollout) body.rollout = { finishedTime: null, startedTime: null, targets: null, ...status.rollout };
    await this.custom.patchNamespacedCustomObjectStatus(
      {
        group: GROUP,
        version: VERSION,
        namespace: cs.metadata!.namespace!,
        plural: 'cofresecrets',
        name: cs.metadata!.name!,
        body: { status: body },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    // Keep our copy current, so the next reconcile of this same object (before the informer catches up) compares
    // against what was just written.
    cs.status = merged;
    return true;
  }
}
