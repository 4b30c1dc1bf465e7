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
  source: { mount: string; path: string; version?: number; kvVersion?: 1 | 2 };
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
  rolloutRestartTargets?: { kind: 'Deployment' | 'StatefulSet' | 'DaemonSet'; name: string }[];
  deletionPolicy?: 'Delete' | 'Retain';
}

export interface CofreSecretStatus {
  observedGeneration?: number;
  sourceVersion?: number;
  lastSyncTime?: string;
  contentHash?: string;
  conditions?: Condition[];
}

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
