// The shapes of the cofre.dev/v1alpha1 objects the operator reads, as charts/cofre/crds/ defines them (after the API
// server filled in the schema's defaults). Only the fields the operator uses are typed.
import type { KubernetesObject } from '@kubernetes/client-node';

export const GROUP = 'cofre.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
/** The field manager of every server-side apply, so `kubectl get -o yaml --show-managed-fields` names us. */
export const FIELD_MANAGER = 'cofre';
/** Pod-template annotation whose change rolls a workload (as `kubectl rollout restart` does with its own key). */
export const ROLLOUT_ANNOTATION = 'cofre.dev/content-hash';
/** On every target: the uid of the CofreSecret that wrote it, which alone may write it again. */
export const WRITER_ANNOTATION = 'cofre.dev/written-by';
/** Set by a user on an existing Secret or ConfigMap to let a CofreSecret take it over (it is otherwise refused). */
export const ADOPT_ANNOTATION = 'cofre.dev/adopt';

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface CofreSecretSpec {
  connectionRef: { name: string; kind?: 'CofreConnection' | 'ClusterCofreConnection' };
  source: CofreSecretSource;
  target: {
    kind?: 'Secret' | 'ConfigMap';
    name: string;
    type?: string;
    immutable?: boolean;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    templates?: Record<string, string>;
  };
  refresh?: { mode?: 'watch' | 'interval'; interval?: string };
  rolloutRestartTargets?: RolloutTarget[];
  /** How long a rollout may take before it is reported as not completing (a duration). Default 10m. */
  rolloutTimeout?: string;
  deletionPolicy?: 'Delete' | 'Retain';
}

/**
 * Where the content comes from. `kv` (the default): a KV secret at <mount>/<path>. `read`: any Vault-style read of
 * <mount>/<path> that returns data (database/static-creds/<role>, other engines'). `dynamic`: a read that issues a
 * leased credential (database/creds/<role>): the operator holds the lease.
 */
export interface CofreSecretSource {
  type?: 'kv' | 'read' | 'dynamic';
  mount: string;
  path: string;
  version?: number;
  kvVersion?: 1 | 2;
  /** dynamic: how long a replaced credential stays valid when the rollout does not finish first (a duration). */
  gracePeriod?: string;
}

export interface RolloutTarget {
  kind: 'Deployment' | 'StatefulSet' | 'DaemonSet';
  name: string;
}

/** A dynamic credential's lease as the operator holds it (times as RFC 3339). The lease ID is not a secret. */
export interface HeldLeaseStatus {
  id: string;
  /** A digest of the spec's source and target the credential was written for: a change there replaces it. */
  forSpec: string;
  ttlSeconds: number;
  issueTime: string;
  expireTime: string;
  maxExpireTime: string;
  renewable: boolean;
  lastRenewalTime?: string;
}

/** A replaced credential, revoked once the rollout of `replacedBy` finished, or at `revokeAt`, or at expiry. */
export interface RetiredLeaseStatus {
  id: string;
  replacedBy: string;
  revokeAt: string;
  ttlSeconds: number;
  expireTime: string;
  maxExpireTime: string;
}

/** Rotation completeness of one workload: pods that exist (running or not) on the current revision and on older. */
export interface TargetRolloutStatus {
  kind: RolloutTarget['kind'];
  name: string;
  currentPods: number;
  outdatedPods: number;
}

export interface RolloutStatus {
  /** The content hash the targets were rolled to (the revision their pod templates carry). */
  revision: string;
  startedTime?: string;
  finishedTime?: string;
  targets?: TargetRolloutStatus[];
}

export interface CofreSecretStatus {
  observedGeneration?: number;
  sourceVersion?: number;
  lastSyncTime?: string;
  contentHash?: string;
  rollout?: RolloutStatus;
  lease?: HeldLeaseStatus;
  retiredLeases?: RetiredLeaseStatus[];
  conditions?: Condition[];
}

/** The finalizer of a dynamic CofreSecret: its lease is revoked before the object goes. */
export const LEASE_FINALIZER = 'cofre.dev/revoke-lease';

export interface CofreSecret extends KubernetesObject {
  spec: CofreSecretSpec;
  status?: CofreSecretStatus;
}

export interface ConnectionSpec {
  address: string;
  caBundle?: string;
  auth: {
    kubernetes: { role: string; mountPath?: string; serviceAccountName?: string; audience?: string };
  };
}

export interface CofreConnection extends KubernetesObject {
  spec: ConnectionSpec;
  /** Ready: the operator reached the server and logged in through this connection (connection-status.ts). */
  status?: { observedGeneration?: number; conditions?: Condition[] };
}

/** namespace/name: the work-queue key of a CofreSecret. */
export function keyOf(obj: KubernetesObject): string {
  return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}

export function splitKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/');
  return { namespace: key.slice(0, i), name: key.slice(i + 1) };
}
