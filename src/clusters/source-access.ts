import type { Caller } from '../core/backend.js';
import type { Core } from '../core/core.js';
import { permissionDenied } from '../core/errors.js';
import type { DeliveryDefinition } from './definitions.js';

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
 * KV source itself. Without this, `update` on sys/cofre/deliveries and sys/cofre/placements would let anyone
 * deliver any secret the server can read to a cluster they control.
 */
export async function checkSourcesReadable(
  core: Core,
  caller: Caller | undefined,
  definition: Pick<DeliveryDefinition, 'items'>,
): Promise<void> {
  if (!caller) throw permissionDenied();
  if (caller.root) return;
  const acl = await core.policies.acl(caller.token.policies);
  for (const item of definition.items) {
    if (!item.kv) continue;
    for (const path of readPaths(core, item.kv.mount, item.kv.path)) {
      if (!acl.check(path, 'read').allowed) {
        throw permissionDenied(`delivering "${path}" needs read on it, which this token lacks`);
      }
    }
  }
}
