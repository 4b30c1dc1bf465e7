import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { Log } from './log.js';

export interface LeaderElectionOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** The Lease's name: every replica of one operator uses the same. */
  name: string;
  /** Unique per process (the pod name, plus a random suffix). */
  identity: string;
  onStartedLeading: () => Promise<void> | void;
  /** Called when leadership is lost (or given up on stop); the caller should stop working at once. */
  onStoppedLeading: () => Promise<void> | void;
  leaseDurationSeconds?: number;
  renewIntervalMs?: number;
  retryIntervalMs?: number;
  log?: Log;
}

const code = (err: unknown): number | undefined => (err as { code?: number }).code;

/**
 * Leader election on a coordination.k8s.io Lease, as client-go's leaderelection does: take the Lease when it is
 * free or expired, renew it well within its duration, and stop leading as soon as a renewal cannot be made in
 * time. Updates carry the Lease's resourceVersion, so two candidates can never both win the same round.
 */
export function runLeaderElection(opts: LeaderElectionOptions): { stop(): Promise<void>; isLeader(): boolean } {
  const api = opts.kubeConfig.makeApiClient(CoordinationV1Api);
  const duration = opts.leaseDurationSeconds ?? 15;
  const renewEvery = opts.renewIntervalMs ?? 5_000;
  const retryEvery = opts.retryIntervalMs ?? 2_000;
  const log = opts.log ?? (() => undefined);
  let leading = false;
  let stopped = false;
  let lastRenew = 0;
  let timer: NodeJS.Timeout | undefined;
  /** The tick under way, so stop() can let a renewal land before it gives the Lease up (not after). */
  let inFlight: Promise<void> | undefined;

  const spec = (previous?: V1Lease) => {
    const now = new V1MicroTime();
    const heldByUs = previous?.spec?.holderIdentity === opts.identity;
    return {
      holderIdentity: opts.identity,
      leaseDurationSeconds: duration,
      acquireTime: heldByUs ? previous?.spec?.acquireTime : now,
      renewTime: now,
      leaseTransitions: (previous?.spec?.leaseTransitions ?? 0) + (heldByUs || !previous ? 0 : 1),
    };
  };

  /** One attempt to take or keep the Lease; true when we hold it afterwards. */
  const tryAcquireOrRenew = async (): Promise<boolean> => {
    let lease: V1Lease | undefined;
    try {
      lease = await api.readNamespacedLease({ name: opts.name, namespace: opts.namespace });
    } catch (err) {
      if (code(err) !== 404) throw err;
    }
    if (!lease) {
      await api.createNamespacedLease({
        namespace: opts.namespace,
        body: { metadata: { name: opts.name }, spec: spec() },
      });
      return true;
    }
    const holder = lease.spec?.holderIdentity;
    const renewed = lease.spec?.renewTime ? new Date(lease.spec.renewTime).getTime() : 0;
    const expired = renewed + (lease.spec?.leaseDurationSeconds ?? duration) * 1000 < Date.now();
    if (holder && holder !== opts.identity && !expired) return false;
    await api.replaceNamespacedLease({
      name: opts.name,
      namespace: opts.namespace,
      body: { ...lease, spec: spec(lease) },
    });
    return true;
  };

  const loseLeadership = async (reason: string): Promise<void> => {
    if (!leading) return;
    leading = false;
    log('stopped leading', { reason }, 'warn');
    await opts.onStoppedLeading();
  };

  const tick = async (): Promise<void> => {
    if (stopped) return;
    try {
      const held = await tryAcquireOrRenew();
      if (held) {
        lastRenew = Date.now();
        if (!leading) {
          leading = true;
          log('started leading', { lease: `${opts.namespace}/${opts.name}`, identity: opts.identity });
          await opts.onStartedLeading();
        }
      } else await loseLeadership('another holder has the lease');
    } catch (err) {
      // A conflict means someone else updated the Lease first; other errors are the API server's. Either way,
      // a leader that cannot renew within the lease duration must stop before another takes over.
      if (leading && Date.now() - lastRenew > (duration * 1000 * 2) / 3) await loseLeadership('renewal failed');
      if (code(err) !== 409) log('leader election error', { error: (err as Error).message }, 'warn');
    }
    if (!stopped) timer = setTimeout(run, leading ? renewEvery : retryEvery);
  };
  const run = (): void => {
    inFlight = tick().finally(() => (inFlight = undefined));
  };

  /** Writes the Lease free; retried on a conflict, which only a renewal racing us here can cause. */
  const release = async (): Promise<void> => {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const lease = await api.readNamespacedLease({ name: opts.name, namespace: opts.namespace });
        if (lease.spec?.holderIdentity !== opts.identity) return;
        await api.replaceNamespacedLease({
          name: opts.name,
          namespace: opts.namespace,
          body: { ...lease, spec: { ...lease.spec, holderIdentity: undefined, renewTime: undefined } },
        });
        return;
      } catch (err) {
        if (code(err) !== 409) return; // the Lease simply expires
      }
    }
  };

  run();
  return {
    isLeader: () => leading,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      // A renewal still on the wire would otherwise land after the release and name us holder again.
      await inFlight;
      if (leading) {
        // Give the Lease up so another replica takes over at once instead of waiting for it to expire.
        await release();
        await loseLeadership('stopping');
      }
    },
  };
}
