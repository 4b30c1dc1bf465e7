// The Cofre operator: keeps each CofreSecret's target Secret/ConfigMap in step with its KV path in Cofre.
//
//   informer (CofreSecrets) ──┐
//   change streams (per id) ──┼─► work queue (one worker per key, back-off on failure) ─► Reconciler
//   interval / full resync ───┘
//
// startOperator is what the `cofre operator` command and leader election call; stop() ends every watch, stream
// and timer it started and waits for reconciles in flight.
import { CustomObjectsApi, makeInformer, type KubeConfig, type KubernetesListObject } from '@kubernetes/client-node';
import { CofreAccess } from './cofre-client.js';
import { Completeness } from './completeness.js';
import { ConnectionStatus } from './connection-status.js';
import { connectionKey, Connections } from './connections.js';
import { parseDuration } from './duration.js';
import { DynamicLeases } from './dynamic.js';
import { kubeMessage } from './errors.js';
import { FollowUps } from './follow-ups.js';
import { stderrLog, type Log } from './log.js';
import { forgetCofreSecret, syncLatency } from './metrics.js';
import { PooledKubeConfig } from './pooled-kubeconfig.js';
import { WorkQueue } from './queue.js';
import { Reconciler } from './reconciler.js';
import { EventRecorder } from './recorder.js';
import { RolloutCoordinator, type RolloutOptions } from './rollout.js';
import { Streams } from './streams.js';
import { GROUP, keyOf, LEASE_FINALIZER, splitKey, VERSION, type CofreSecret } from './types.js';

export { operatorRegistry } from './metrics.js';
export type { CofreSecret, CofreConnection } from './types.js';

export interface OperatorOptions {
  kubeConfig: KubeConfig;
  /** Watch CofreSecrets in this namespace only; all namespaces when absent. */
  namespace?: string;
  log?: Log;
  /** Safety-net full resync period (DESIGN.md: push first, periodic resync only as a net). Default 10 minutes. */
  resyncIntervalMs?: number;
  /** Parallel reconciles. Default 16: a reconcile mostly waits on the API server and Cofre. */
  concurrency?: number;
  /** Rollout batching and the per-namespace rollout rate limit (rollout.ts). */
  rollouts?: RolloutOptions;
}

const DEFAULT_CONCURRENCY = 16;

/** The connection a CofreSecret names, as connections.ts keys it. */
function connectionOf(cs: CofreSecret): string {
  const ref = cs.spec.connectionRef;
  return connectionKey(ref.kind ?? 'CofreConnection', cs.metadata?.namespace ?? '', ref.name);
}

export interface Operator {
  stop(): Promise<void>;
  /** True once the first list of CofreSecrets is in and the watch runs. */
  ready(): boolean;
}

export async function startOperator(opts: OperatorOptions): Promise<Operator> {
  const kc = PooledKubeConfig.from(opts.kubeConfig);
  const log = opts.log ?? stderrLog;
  const custom = kc.makeApiClient(CustomObjectsApi);
  let stopped = false;
  let synced = false;

  // Connections are watched, not read per reconcile; a connection's change re-runs the CofreSecrets using it.
  const connections = new Connections(kc, {
    ...(opts.namespace ? { namespace: opts.namespace } : {}),
    onChange: (connection) => {
      for (const cs of cache.list()) if (connectionOf(cs) === connection) queue.add(keyOf(cs));
    },
    log,
  });
  const connectionStatus = new ConnectionStatus(kc, { lookup: (...ref) => connections.get(...ref), log });
  const access = new CofreAccess(kc, connections, connectionStatus);

  const base = `/apis/${GROUP}/${VERSION}`;
  const watchPath = opts.namespace ? `${base}/namespaces/${opts.namespace}/cofresecrets` : `${base}/cofresecrets`;
  const informer = makeInformer<CofreSecret>(
    kc,
    watchPath,
    async () =>
      (opts.namespace
        ? await custom.listNamespacedCustomObject({
            group: GROUP,
            version: VERSION,
            namespace: opts.namespace,
            plural: 'cofresecrets',
          })
        : await custom.listClusterCustomObject({
            group: GROUP,
            version: VERSION,
            plural: 'cofresecrets',
          })) as KubernetesListObject<CofreSecret>,
  );
  const cache = informer as unknown as {
    get(name: string, ns?: string): CofreSecret | undefined;
    list(): readonly CofreSecret[];
  };

  /** When a change event for a key arrived, to measure event-to-write latency. */
  const pushedAt = new Map<string, number>();

  const streams = new Streams(access, {
    list: () => cache.list(),
    keyOf,
    enqueue: (key) => {
      if (!pushedAt.has(key)) pushedAt.set(key, Date.now());
      queue.add(key);
    },
    log,
  });

  // Enqueued when a batched rollout was carried out, and when a rollout or lease asks to be looked at again.
  const followUps = new FollowUps((key) => queue.add(key));
  const rollouts = new RolloutCoordinator(kc, { done: (key) => queue.add(key), log }, opts.rollouts);
  const reconciler = new Reconciler({
    kc,
    access,
    recorder: new EventRecorder(kc, log),
    rollouts,
    completeness: new Completeness(kc),
    leases: new DynamicLeases(access),
    // Subscribed before the read: a write landing after the read is then pushed, never lost.
    subscribe: (id, key) => streams.subscribe(id, key),
    log,
  });

  const queue: WorkQueue = new WorkQueue(
    async (key) => {
      const { namespace, name } = splitKey(key);
      const cs = cache.get(name, namespace);
      if (!cs || cs.metadata?.deletionTimestamp) {
        pushedAt.delete(key);
        // A dynamic source's lease is revoked before the object goes (its finalizer).
        if (cs?.metadata?.finalizers?.includes(LEASE_FINALIZER)) await reconciler.finalize(cs);
        return;
      }
      const started = pushedAt.get(key);
      pushedAt.delete(key);
      const result = await reconciler.reconcile(cs);
      if (result.wrote && started !== undefined) syncLatency.observe((Date.now() - started) / 1000);
      if (result.followUpMs !== undefined) followUps.after(key, result.followUpMs);
      if (cs.spec.refresh?.mode === 'interval' && cs.spec.refresh.interval) {
        const ms = parseDuration(cs.spec.refresh.interval);
        if (ms) queue.addAfter(key, ms);
      }
    },
    { concurrency: opts.concurrency ?? DEFAULT_CONCURRENCY },
  );

  // The operator's own status writes come back as updates; only a new generation (a spec change) needs work.
  const seenGeneration = new Map<string, number | undefined>();
  informer.on('add', (cs) => {
    seenGeneration.set(keyOf(cs), cs.metadata?.generation);
    queue.add(keyOf(cs));
  });
  informer.on('update', (cs) => {
    const key = keyOf(cs);
    const finalizing =
      cs.metadata?.deletionTimestamp !== undefined && cs.metadata.finalizers?.includes(LEASE_FINALIZER);
    if (!finalizing && seenGeneration.has(key) && seenGeneration.get(key) === cs.metadata?.generation) return;
    seenGeneration.set(key, cs.metadata?.generation);
    queue.add(key);
  });
  informer.on('delete', (cs) => {
    // The target goes by garbage collection (owner reference, deletionPolicy Delete) or stays (Retain).
    const key = keyOf(cs);
    seenGeneration.delete(key);
    queue.remove(key);
    streams.forget(key);
    followUps.cancel(key);
    rollouts.forget(key);
    forgetCofreSecret(cs.metadata?.namespace ?? '', cs.metadata?.name ?? '');
  });
  informer.on('error', (err: unknown) => {
    if (stopped) return;
    log('CofreSecret watch failed; restarting', { error: kubeMessage(err) }, 'warn');
    setTimeout(() => {
      if (!stopped)
        informer.start().catch((e: unknown) => log('restarting the watch failed', { error: kubeMessage(e) }, 'error'));
    }, 2_000).unref();
  });

  // Connections first, so the first reconciles find theirs.
  await connections.start();
  await informer.start();
  synced = true;
  log('operator started', { namespace: opts.namespace ?? '(all)', cofreSecrets: cache.list().length });

  const resync = setInterval(() => {
    for (const cs of cache.list()) queue.add(keyOf(cs));
  }, opts.resyncIntervalMs ?? 600_000);
  resync.unref();

  return {
    ready: () => synced && !stopped,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(resync);
      await informer.stop();
      await connections.stop();
      streams.closeAll();
      // Pending rollouts are dropped, not carried out: status still names the revision rolled to before, so the
      // next operator (or leader) asks again, once.
      rollouts.stop();
      followUps.stop();
      // Waits for reconciles in flight; they can no longer open streams.
      await queue.stop();
      await connectionStatus.settle();
      access.close();
      kc.close();
      log('operator stopped');
    },
  };
}
