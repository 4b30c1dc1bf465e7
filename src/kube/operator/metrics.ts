// The operator's Prometheus metrics, in a registry of their own that the health server exposes next to its
// defaults. Created once per process: startOperator may run several times (leader election, tests).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export const operatorRegistry = new Registry();

export const reconcileTotal = new Counter({
  name: 'cofre_operator_reconcile_total',
  help: 'CofreSecret reconciles, by result (synced: target written; unchanged: nothing to write; error).',
  labelNames: ['result'] as const,
  registers: [operatorRegistry],
});

export const reconcileErrors = new Counter({
  name: 'cofre_operator_reconcile_errors_total',
  help: 'Failed CofreSecret reconciles, by Ready reason.',
  labelNames: ['reason'] as const,
  registers: [operatorRegistry],
});

export const reconcileDuration = new Histogram({
  name: 'cofre_operator_reconcile_duration_seconds',
  help: 'Time of one CofreSecret reconcile (login, read, apply, status).',
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [operatorRegistry],
});

export const syncLatency = new Histogram({
  name: 'cofre_operator_sync_latency_seconds',
  help: 'From a change event arriving on the change stream to its target being written.',
  buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
  registers: [operatorRegistry],
});

export const targetWrites = new Counter({
  name: 'cofre_operator_target_writes_total',
  help: 'Secrets/ConfigMaps written (server-side apply), by kind.',
  labelNames: ['kind'] as const,
  registers: [operatorRegistry],
});

export const rolloutRestarts = new Counter({
  name: 'cofre_operator_rollout_restarts_total',
  help: 'Workloads whose pod template was annotated with a new content hash, by kind.',
  labelNames: ['kind'] as const,
  registers: [operatorRegistry],
});

export const changeEvents = new Counter({
  name: 'cofre_operator_change_events_total',
  help: 'Events received on Cofre change streams, by kind (write, delete, reset).',
  labelNames: ['kind'] as const,
  registers: [operatorRegistry],
});

export const streamsConnected = new Gauge({
  name: 'cofre_operator_change_streams_connected',
  help: 'Change-stream subscriptions currently connected (one per connection, namespace and service account).',
  registers: [operatorRegistry],
});

export const outdatedPods = new Gauge({
  name: 'cofre_operator_outdated_pods',
  help:
    "Pods of a CofreSecret's rollout targets still on an older content revision (pods that exist, running or not): " +
    '"N pods still on the previous credential". Zero once the rollout finished.',
  labelNames: ['namespace', 'cofresecret'] as const,
  registers: [operatorRegistry],
});

export const rolloutFinished = new Gauge({
  name: 'cofre_operator_rollout_finished_timestamp_seconds',
  help: "When the last rollout of a CofreSecret's targets finished (unix seconds); absent while one runs.",
  labelNames: ['namespace', 'cofresecret'] as const,
  registers: [operatorRegistry],
});

export const rolloutsStuck = new Counter({
  name: 'cofre_operator_rollouts_stuck_total',
  help: "Rollouts that did not finish within their CofreSecret's rolloutTimeout.",
  registers: [operatorRegistry],
});

export const leaseOperations = new Counter({
  name: 'cofre_operator_lease_operations_total',
  help: 'Dynamic-credential lease operations, by operation (issue, renew, revoke) and result (ok, error).',
  labelNames: ['operation', 'result'] as const,
  registers: [operatorRegistry],
});

/** A CofreSecret is gone: its series go with it. */
export function forgetCofreSecret(namespace: string, name: string): void {
  outdatedPods.remove({ namespace, cofresecret: name });
  rolloutFinished.remove({ namespace, cofresecret: name });
}

export const kubeConnectionsOpened = new Counter({
  name: 'cofre_operator_kube_connections_opened_total',
  help: 'Connections opened to the Kubernetes API server for API calls (watches not counted); calls reuse them.',
  registers: [operatorRegistry],
});
