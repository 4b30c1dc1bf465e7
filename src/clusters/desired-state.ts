import type { ClusterRecord, ClusterStore, DeliveryRecord, PlacementRecord } from './store.js';
import { selects } from './labels.js';

/** One entry of a cluster's set: what it should hold of a delivery; revision 0 means "remove". */
export interface SetEntry {
  delivery: string;
  namespace: string;
  revision: number;
}

/**
 * Every cluster, delivery and placement, read once: what the fan-out computes many clusters' sets from, so a
 * change costs one pass over the definitions, not one per connected agent.
 */
export class DesiredState {
  private constructor(
    readonly clusters: Map<string, ClusterRecord>,
    readonly deliveries: Map<string, DeliveryRecord>,
    readonly placements: PlacementRecord[],
  ) {}

  static async load(store: ClusterStore, only?: Iterable<string>): Promise<DesiredState> {
    const clusters = new Map<string, ClusterRecord>();
    for (const name of only ?? (await store.listClusters())) {
      const record = await store.cluster(name);
      if (record) clusters.set(name, record);
    }
    const deliveries = new Map<string, DeliveryRecord>();
    for (const name of await store.listDeliveries()) {
      const record = await store.delivery(name);
      if (record) deliveries.set(name, record);
    }
    const placements: PlacementRecord[] = [];
    for (const name of await store.listPlacements()) {
      const record = await store.placement(name);
      if (record) placements.push(record);
    }
    return new DesiredState(clusters, deliveries, placements);
  }

  /**
   * The same state with one placement written (or, undefined, deleted): what a placement preview compares with the
   * state as it is, without writing anything.
   */
  replacing(name: string, placement: PlacementRecord | undefined): DesiredState {
    const others = this.placements.filter((p) => p.name !== name);
    return new DesiredState(this.clusters, this.deliveries, placement ? [...others, placement] : others);
  }

  /**
   * The deliveries placed on this cluster, by name (a delivery placed twice counts once). Only the name and labels
   * count: a cluster about to be registered or relabelled can be asked about.
   */
  selected(cluster: Pick<ClusterRecord, 'name' | 'labels'>): Map<string, DeliveryRecord> {
    const out = new Map<string, DeliveryRecord>();
    for (const placement of this.placements) {
      const delivery = this.deliveries.get(placement.delivery);
      if (!delivery) continue;
      const named = placement.clusters.includes(cluster.name);
      const matched = placement.selector !== undefined && selects(placement.selector.matchLabels, cluster.labels);
      if (named || matched) out.set(delivery.name, delivery);
    }
    return out;
  }

  /** The clusters a placement selects now. */
  placedOn(placement: PlacementRecord): ClusterRecord[] {
    return [...this.clusters.values()].filter(
      (c) =>
        placement.clusters.includes(c.name) ||
        (placement.selector !== undefined && selects(placement.selector.matchLabels, c.labels)),
    );
  }
}

/**
 * A cluster's set: its placed deliveries at their revisions, and revision 0 for each delivery it was handed a
 * bundle of that is no longer placed there (until its agent reports the removal done).
 *
 * A cluster's revision of a delivery is the delivery's revision plus the times its own database credentials of
 * that delivery were replaced or revoked (its `generations`): every change of what it is sealed makes a higher
 * number for that cluster, and a credential replaced for one cluster moves no other cluster's revision.
 */
export function setOf(state: DesiredState, cluster: ClusterRecord): SetEntry[] {
  const selected = state.selected(cluster);
  const out: SetEntry[] = [...selected.values()].map((d) => ({
    delivery: d.name,
    namespace: d.namespace,
    revision: d.revision + (cluster.generations?.[d.name] ?? 0),
  }));
  for (const [delivery, namespace] of Object.entries(cluster.handed ?? {})) {
    if (!selected.has(delivery)) out.push({ delivery, namespace, revision: 0 });
  }
  return out.sort((a, b) => a.delivery.localeCompare(b.delivery));
}
