/**
 * The multi-cluster pipeline's API (sys/cofre/clusters, deliveries, placements) as the pages use it, and the few
 * pure helpers they share: labels typed as text, and the rollout state a cluster's report adds up to. Every rule
 * about what a delivery or placement makes is the server's (its preview paths); nothing here re-implements one.
 */
import { ApiError, call, list, type Json } from './api';

export interface ClusterStatus {
  state: string;
  desired_revision: number;
  revision: number;
  applied_at: string | null;
  error: string | null;
  pods: Record<string, number>;
  notes: string[];
  last_seen: string | null;
  /** On a delivery's status: the placements that select the cluster. */
  placements?: string[];
  /** For a delivery with a database source: the leases of this cluster's credentials (ids only). */
  credentials?: { leases: string[]; replaced_leases: string[]; error: string | null };
}

export interface PlacementRead {
  delivery: string;
  selector: { matchLabels: Record<string, string> } | null;
  clusters: string[];
  status: { delivery_revision: number; delivery_error: string | null; clusters: Record<string, ClusterStatus> };
}

export const listClusters = (): Promise<string[]> => list('sys/cofre/clusters');
export const listDeliveries = (): Promise<string[]> => list('sys/cofre/deliveries');
export const listPlacements = (): Promise<string[]> => list('sys/cofre/placements');

export async function readPlacement(name: string): Promise<PlacementRead> {
  return (await call('GET', `sys/cofre/placements/${name}`)).data as PlacementRead;
}

export async function readCluster(name: string): Promise<Json> {
  try {
    return (await call('GET', `sys/cofre/clusters/${name}`)).data;
  } catch (err) {
    // Vault's 404 carries no message: say what is missing.
    if (err instanceof ApiError && err.status === 404) throw new Error(`There is no cluster named "${name}".`);
    throw err;
  }
}

/** Labels typed one per line or comma-separated ("region=eu, tier=store"); a part without "=" is refused here. */
export function parseLabelText(text: string): { labels: Record<string, string>; problem?: string } {
  const labels: Record<string, string> = {};
  for (const part of text.split(/[\n,]/)) {
    const trimmed = part.trim();
    if (trimmed === '') continue;
    const eq = trimmed.indexOf('=');
    if (eq <= 0) return { labels, problem: `"${trimmed}" is not key=value` };
    labels[trimmed.slice(0, eq).trim()] = trimmed.slice(eq + 1).trim();
  }
  return { labels };
}

export const labelText = (labels: Record<string, string> | null | undefined): string =>
  Object.entries(labels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');

export type RolloutTone = 'ok' | 'busy' | 'bad' | 'idle';

/**
 * What a cluster's report says about one delivery, in words: whether its agent has applied the revision it should
 * hold, and whether every pod the rollout targets select runs it.
 */
export function rolloutState(c: ClusterStatus): { text: string; tone: RolloutTone } {
  if (c.error) return { text: 'Error', tone: 'bad' };
  if (c.state !== 'enrolled') return { text: 'Agent not enrolled yet', tone: 'idle' };
  if (c.revision === 0) return { text: `Waiting for the agent to apply revision ${c.desired_revision}`, tone: 'busy' };
  if (c.revision < c.desired_revision) return { text: `Applying revision ${c.desired_revision}`, tone: 'busy' };
  const total = Object.values(c.pods).reduce((a, b) => a + b, 0);
  const current = c.pods[String(c.revision)] ?? 0;
  if (current < total)
    return { text: `Rolling out: ${current} of ${total} pods on revision ${c.revision}`, tone: 'busy' };
  return { text: total > 0 ? 'Rolled out' : 'Applied (no pods to roll)', tone: 'ok' };
}

export const when = (iso: string | null | undefined): string => (iso ? new Date(iso).toLocaleString() : 'never');
