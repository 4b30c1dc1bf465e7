import type { Caller } from '../core/backend.js';
import type { Core } from '../core/core.js';
import type { ACL } from '../core/policy/index.js';
import { permissionDenied } from '../core/errors.js';
import type { DeliveryDefinition } from './definitions.js';
import { DesiredState } from './desired-state.js';
import type { ClusterStore, DeliveryRecord } from './store.js';

/**
 * The API paths a client reads a KV source at: `<mount>/data/<path>` on KV v2, `<mount>/<path>` on v1, and both
 * when the mount does not exist yet (it could be mounted as either before the delivery resolves).
 */
function readPaths(core: Core, mount: string, path: string): string[] {
  const mounted = core.mounts.get('mounts', `${mount}/`);
  if (!mounted) return [`${mount}/data/${path}`, `${mount}/${path}`];
  return mounted.entry.options.version === '2' ? [`${mount}/data/${path}`] : [`${mount}/${path}`];
}

/**
 * Writing a delivery or placing one sends its sources' values to clusters: the caller must be allowed to read every
 * source itself (a KV path, or a database role's credentials). Without this, `update` on sys/cofre/deliveries and
 * sys/cofre/placements would let anyone deliver any secret the server can read to a cluster they control.
 */
export async function checkSourcesReadable(
  core: Core,
  caller: Caller | undefined,
  definition: Pick<DeliveryDefinition, 'items'>,
): Promise<void> {
  if (!caller) throw permissionDenied();
  if (caller.root) return;
  const unreadable = unreadableSource(core, await core.policies.acl(caller.token.policies), definition);
  if (unreadable) throw permissionDenied(`delivering "${unreadable}" needs read on it, which this token lacks`);
}

/**
 * The other side of the same join: registering a cluster, or relabelling one, changes which placements select it,
 * and the deliveries it gains flow to whoever runs its agent. The caller must be allowed to read the sources of each
 * delivery the cluster gains, as placing that delivery there would need; otherwise `update` on a cluster (or
 * `create` of a name some placement names) would pull any published secret to a cluster the caller controls. What
 * the cluster already receives is not checked again: keeping or narrowing its labels widens nothing.
 */
export async function checkGainedSourcesReadable(
  core: Core,
  caller: Caller | undefined,
  store: ClusterStore,
  cluster: string,
  labels: Record<string, string> | undefined,
): Promise<void> {
  if (!caller) throw permissionDenied();
  if (caller.root) return;
  const state = await DesiredState.load(store, [cluster]);
  const before = state.clusters.get(cluster);
  const had = before ? state.selected(before) : new Map<string, DeliveryRecord>();
  // No labels given: an existing cluster keeps its own, a new one has none.
  const after = { name: cluster, labels: labels ?? before?.labels ?? {} };
  const acl = await core.policies.acl(caller.token.policies);
  for (const [name, delivery] of state.selected(after)) {
    if (had.has(name) || !unreadableSource(core, acl, delivery)) continue;
    // The delivery is named, not its source: this token may not know what the delivery reads.
    throw permissionDenied(
      `with these labels cluster "${cluster}" would receive delivery "${name}", ` +
        'some of whose sources this token may not read',
    );
  }
}

/**
 * The first read path among the definition's sources that the ACL does not allow reading, if any: a KV source's
 * data, and a database source's `<mount>/creds/<role>` (what issuing the credential to a client needs; before, a
 * database source was not checked, so a token that could only relabel a cluster or place a delivery had database
 * credentials of any role sent to a cluster it controls).
 */
function unreadableSource(core: Core, acl: ACL, definition: Pick<DeliveryDefinition, 'items'>): string | undefined {
  for (const item of definition.items) {
    const paths = item.kv
      ? readPaths(core, item.kv.mount, item.kv.path)
      : item.database
        ? [`${item.database.mount}/creds/${item.database.role}`]
        : [];
    for (const path of paths) {
      if (!acl.check(path, 'read').allowed) return path;
    }
  }
  return undefined;
}
