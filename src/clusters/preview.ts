// Read-only previews for the web UI (and any client): what a delivery definition would make in a cluster, and which
// clusters a placement would reach, computed by the code that does it for real and without writing anything.
//
// A delivery preview resolves the payload as the fan-out does (payload.ts) and renders each object as the agent
// writes it (src/kube/cluster-agent/manifest.ts), then drops every value: it shows kinds, names, labels,
// annotations and data keys only.
import type { Core } from '../core/core.js';
import { DATABASE_CREDENTIAL_KEYS, type DeliveryDefinition, type PlacementDefinition } from './definitions.js';
import { DesiredState } from './desired-state.js';
import { desiredObject, inPodNotes, rolloutPatch } from '../kube/cluster-agent/manifest.js';
import { parsePayload, PayloadError, type DeliveryPayload } from '../kube/cluster-agent/payload.js';
import { resolvePayload } from './payload.js';
import { revisionAfterWrite } from './service.js';
import type { ClusterRecord, ClusterStore } from './store.js';

/** What stands in a preview where the agent writes a value. */
export const VALUE_PLACEHOLDER = '(value not shown)';

const hideValues = (data: Record<string, string> | undefined): Record<string, string> | undefined =>
  data && Object.fromEntries(Object.keys(data).map((key) => [key, VALUE_PLACEHOLDER]));

/** Where an item's values come from, in words: a path and a role name, never a value. */
function sourceOf(item: DeliveryDefinition['items'][number]): string {
  if (item.kv) return `kv ${item.kv.mount}/${item.kv.path}`;
  if (item.database) return `database ${item.database.mount}/creds/${item.database.role} (a credential per cluster)`;
  return 'literal (in the definition)';
}

export async function previewDelivery(
  core: Core,
  store: ClusterStore,
  name: string,
  definition: DeliveryDefinition,
): Promise<Record<string, unknown>> {
  const resolved = await resolvePayload(core, definition);
  const existing = await store.delivery(name);
  const revision = revisionAfterWrite(existing, definition, resolved.ok ? resolved.digest : '');
  const base = {
    delivery: name,
    namespace: definition.namespace,
    revision,
    current_revision: existing?.revision ?? 0,
  };
  if (!resolved.ok) return { ...base, objects: [], rollout: [], notes: [], source_error: resolved.error };
  // Checked as the agent checks what it opens: a payload the server builds but an agent would refuse (a KV key
  // Kubernetes does not allow, taken with "every key") is said so here, not found out in every cluster.
  let payload: DeliveryPayload;
  try {
    payload = parsePayload(JSON.parse(resolved.bytes.toString('utf8')));
  } catch (err) {
    if (!(err instanceof PayloadError)) throw err;
    const error = `the cluster agents would refuse it: ${err.message}`;
    return { ...base, objects: [], rollout: [], notes: [], source_error: error };
  }
  const objects = definition.items.map((item, i) => {
    const obj = payload.objects[i]!;
    // A database item's keys are filled per cluster when its bundle is sealed: the keys it will have, not values.
    const data = item.database
      ? Object.fromEntries((item.database.keys ?? [...DATABASE_CREDENTIAL_KEYS].sort()).map((k) => [k, '']))
      : obj.data;
    const manifest = desiredObject({ ...obj, data }, name, definition.namespace, revision);
    manifest.data = hideValues(manifest.data);
    if (manifest.binaryData) manifest.binaryData = hideValues(manifest.binaryData);
    return { item: item.name, mode: item.mode, source: sourceOf(item), manifest };
  });
  const rollout = definition.rollout.map((target) => ({
    ...target,
    namespace: definition.namespace,
    patch: rolloutPatch(revision),
  }));
  return { ...base, objects, rollout, notes: inPodNotes(definition.namespace, payload), source_error: null };
}

const clusterSummary = (cluster: ClusterRecord) => ({
  name: cluster.name,
  labels: cluster.labels,
  state: cluster.signingKey ? 'enrolled' : 'pending',
  last_seen: cluster.lastSeen ?? null,
});

/**
 * The clusters a placement written with this definition would select, and, against the state as it is, the
 * clusters that would start or stop holding its delivery (a cluster another placement also places it on keeps it).
 */
export async function previewPlacement(
  store: ClusterStore,
  name: string,
  definition: PlacementDefinition | undefined,
): Promise<Record<string, unknown>> {
  const now = await DesiredState.load(store);
  const existing = now.placements.find((p) => p.name === name);
  const record = definition ? { name, ...definition, updatedAt: '' } : undefined;
  const next = now.replacing(name, record);
  const delivery = definition?.delivery ?? existing?.delivery ?? '';
  const holds = (state: DesiredState, c: ClusterRecord): boolean => state.selected(c).has(delivery);
  const clusters = [...now.clusters.values()].sort((a, b) => a.name.localeCompare(b.name));
  return {
    delivery,
    delivery_revision: now.deliveries.get(delivery)?.revision ?? 0,
    selected: record ? next.placedOn(record).map(clusterSummary) : [],
    currently_selected: existing ? now.placedOn(existing).map((c) => c.name) : [],
    gains: clusters.filter((c) => !holds(now, c) && holds(next, c)).map((c) => c.name),
    loses: clusters.filter((c) => holds(now, c) && !holds(next, c)).map((c) => c.name),
  };
}
