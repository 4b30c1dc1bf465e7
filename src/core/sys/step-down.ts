import type { PathRecord } from '../backend.js';
import type { Core } from '../core.js';

/**
 * sys/step-down: the node gives up running the background jobs (lease expiry, rotations) so that another node of
 * the cluster takes them over. Every Cofre node serves requests, so nothing else changes; on a single node it is a
 * no-op success, as Vault's. Needs sudo, as in Vault.
 */
export function stepDownPaths(core: Core): PathRecord[] {
  return [
    {
      pattern: 'step-down',
      summary: 'Makes this node give up leading the background jobs; another node takes over.',
      sudo: true,
      operations: {
        update: async () => {
          await core.stepDown();
          return undefined;
        },
      },
    },
  ];
}
