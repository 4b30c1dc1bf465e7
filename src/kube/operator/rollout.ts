// Coordinated rollout restarts: set the pod-template annotation cofre.dev/content-hash of each named workload to the
// new content hash, as `kubectl rollout restart` does with its timestamp.
// - Batched: requests for one workload within a short window (several writes, several CofreSecrets) make one
//   rollout, to the hash requested last; the window slides with each request up to a cap, so a steady stream of
//   writes still rolls.
// - Idempotent: keyed by the hash rather than a time, a retry or an operator restart for the same content finds the
//   annotation already set and does nothing. Whether to ask at all is the reconciler's call (status.rollout.revision
//   against the content hash), so a resync with unchanged content never asks.
// - Rate-limited per namespace (a token bucket): a burst of rotations in one namespace cannot restart all of it at
//   once; the excess waits for its turn.
import { AppsV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { kubeCode, kubeMessage } from './errors.js';
import { rolloutRestarts } from './metrics.js';
import { ROLLOUT_ANNOTATION, type CofreSecret } from './types.js';

type Workload = { spec?: { template?: { metadata?: { annotations?: Record<string, string> } } } };

export interface RolloutOptions {
  /** Requests for one workload closer together than this make one rollout. Default 2 s. */
  batchWindowMs?: number;
  /** Rollouts each namespace may start per minute, on average: one per 60/N s once its burst is spent. Default 10. */
  namespaceRolloutsPerMinute?: number;
  /** Rollouts a namespace may start at once before the rate applies. Default: namespaceRolloutsPerMinute. */
  namespaceRolloutBurst?: number;
}

/** What became of one CofreSecret's request, for its next reconcile to put in status. */
export interface RolloutOutcome {
  hash: string;
  /** When the last of its workloads was patched (or found already on the hash). */
  at: number;
  restarted: string[];
  failures: string[];
}

interface Pending {
  namespace: string;
  kind: WorkloadKind;
  name: string;
  hash: string;
  /** Only a first sync asks: roll only if the workload already carries an older hash. */
  onlyStamped: boolean;
  /** CofreSecret keys waiting on this workload. */
  waiting: Set<string>;
  firstAt: number;
  timer?: NodeJS.Timeout;
}

interface Asked {
  hash: string;
  workloads: Set<string>;
  restarted: string[];
  failures: string[];
}

export class RolloutCoordinator {
  private readonly apps: AppsV1Api;
  private readonly windowMs: number;
  private readonly perMinute: number;
  private readonly burst: number;
  private readonly pending = new Map<string, Pending>();
  private readonly asked = new Map<string, Asked>();
  private readonly outcomes = new Map<string, RolloutOutcome>();
  /** Token buckets by namespace: tokens left and when they were counted. */
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private stopped = false;

  constructor(
    kc: KubeConfig,
    private readonly deps: {
      /** A CofreSecret's rollout finished (all its workloads handled): reconcile it to record the outcome. */
      done: (csKey: string) => void;
      log: (msg: string, fields?: object) => void;
    },
    opts: RolloutOptions = {},
  ) {
    this.apps = kc.makeApiClient(AppsV1Api);
    this.windowMs = opts.batchWindowMs ?? 2_000;
    this.perMinute = Math.max(1, opts.namespaceRolloutsPerMinute ?? 10);
    this.burst = Math.max(1, opts.namespaceRolloutBurst ?? this.perMinute);
  }

  /**
   * Asks for the CofreSecret's workloads to roll to `hash`. Returns false when there is nothing to roll (no
   * targets). A newer request for the same CofreSecret replaces an older one not yet carried out.
   */
  request(cs: CofreSecret, csKey: string, hash: string, firstSync: boolean): boolean {
    const targets = cs.spec.rolloutRestartTargets ?? [];
    if (this.stopped || targets.length === 0) return false;
    const namespace = cs.metadata!.namespace!;
    const previous = this.asked.get(csKey);
    if (previous?.hash === hash) return true;
    this.outcomes.delete(csKey);
    const workloads = new Set<string>();
    for (const t of targets) {
      const wkey = `${namespace}/${t.kind}/${t.name}`;
      workloads.add(wkey);
      let p = this.pending.get(wkey);
      const now = Date.now();
      if (!p) {
        p = { namespace, kind: t.kind, name: t.name, hash, onlyStamped: firstSync, waiting: new Set(), firstAt: now };
        this.pending.set(wkey, p);
      } else {
        p.hash = hash;
        p.onlyStamped = p.onlyStamped && firstSync;
      }
      p.waiting.add(csKey);
      this.arm(wkey, p, Math.min(now + this.windowMs, p.firstAt + 5 * this.windowMs));
    }
    this.asked.set(csKey, { hash, workloads, restarted: [], failures: [] });
    return true;
  }

  /**
   * The outcome of the CofreSecret's last request, once every workload of it was handled; given once. A reconcile
   * that could not record it (or a failure in it) asks again, and the repeated patch finds the annotation set.
   */
  takeOutcome(csKey: string): RolloutOutcome | undefined {
    const outcome = this.outcomes.get(csKey);
    this.outcomes.delete(csKey);
    return outcome;
  }

  /** Whether a request of this CofreSecret is still waiting for its window or its namespace's turn. */
  waiting(csKey: string): boolean {
    return this.asked.has(csKey);
  }

  /** The CofreSecret is gone: its requests no longer count (a workload shared with another still rolls). */
  forget(csKey: string): void {
    this.asked.delete(csKey);
    this.outcomes.delete(csKey);
    for (const [wkey, p] of this.pending) {
      p.waiting.delete(csKey);
      if (p.waiting.size === 0) {
        clearTimeout(p.timer);
        this.pending.delete(wkey);
      }
    }
  }

  stop(): void {
    this.stopped = true;
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    this.asked.clear();
  }

  private arm(wkey: string, p: Pending, at: number): void {
    clearTimeout(p.timer);
    p.timer = setTimeout(() => void this.fire(wkey, p), Math.max(0, at - Date.now()));
    p.timer.unref();
  }

  /** Takes a token of the namespace's bucket, or says when the next one is there. */
  private take(namespace: string): number {
    const now = Date.now();
    const refillMs = 60_000 / this.perMinute;
    const b = this.buckets.get(namespace) ?? { tokens: this.burst, at: now };
    b.tokens = Math.min(this.burst, b.tokens + (now - b.at) / refillMs);
    b.at = now;
    this.buckets.set(namespace, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - b.tokens) * refillMs);
  }

  private async fire(wkey: string, p: Pending): Promise<void> {
    if (this.stopped || this.pending.get(wkey) !== p) return;
    const { namespace, kind, name, hash } = p;
    let result: { restarted: boolean } | { failure: string };
    try {
      const current = await this.read(kind, name, namespace);
      const existing = current?.spec?.template?.metadata?.annotations?.[ROLLOUT_ANNOTATION];
      // Absent (a workload created later reads the new content anyway), already on the hash, or never stamped
      // and this is a first sync: nothing to roll.
      if (!current || existing === hash || (existing === undefined && p.onlyStamped)) {
        result = { restarted: false };
      } else {
        const wait = this.take(namespace);
        if (wait > 0) {
          this.deps.log('rollout waits for the namespace rate limit', { namespace, workload: `${kind}/${name}`, wait });
          return this.arm(wkey, p, Date.now() + wait);
        }
        const body = { spec: { template: { metadata: { annotations: { [ROLLOUT_ANNOTATION]: hash } } } } };
        await workloadOps(this.apps, kind).patch({ name, namespace, body });
        rolloutRestarts.inc({ kind });
        result = { restarted: true };
      }
    } catch (err) {
      result = { failure: `restarting ${kind} ${name}: ${kubeMessage(err)}` };
    }
    // Requests that arrived while this one ran (a newer hash) keep their entry and their own timer.
    if (this.pending.get(wkey) === p && p.hash === hash) this.pending.delete(wkey);
    for (const csKey of p.waiting) {
      const asked = this.asked.get(csKey);
      if (!asked || asked.hash !== hash || !asked.workloads.delete(wkey)) continue;
      if ('failure' in result) asked.failures.push(result.failure);
      else if (result.restarted) asked.restarted.push(`${kind}/${name}`);
      if (asked.workloads.size > 0) continue;
      this.asked.delete(csKey);
      this.outcomes.set(csKey, { hash, at: Date.now(), restarted: asked.restarted, failures: asked.failures });
      this.deps.done(csKey);
    }
  }

  private async read(kind: WorkloadKind, name: string, namespace: string): Promise<Workload | undefined> {
    try {
      return (await workloadOps(this.apps, kind).read({ name, namespace })) as Workload;
    } catch (err) {
      if (kubeCode(err) === 404) return undefined;
      throw err;
    }
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
