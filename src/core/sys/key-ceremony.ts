import type { PathRecord } from '../backend.js';
import { FORWARD_PATH } from '../ceremony-forwarding.js';
import type { Core } from '../core.js';
import { badRequest } from '../errors.js';

/**
 * sys/internal/key-ceremony: the leader's end of generate-root and rekey calls that another node of the cluster
 * forwarded (src/core/ceremony-forwarding.ts). Unauthenticated, as generate-root and rekey are: the call is sealed
 * by the barrier, which only unsealed nodes of this cluster can do, and the answer goes back sealed.
 */
export function keyCeremonyForwardPaths(core: Core): PathRecord[] {
  return [
    {
      pattern: FORWARD_PATH.slice('sys/'.length),
      summary: 'Runs a generate-root or rekey call another node of the cluster forwarded to its leader.',
      unauthenticated: true,
      fields: {
        sealed: { type: 'string', description: 'The call, sealed by the barrier of the node that forwarded it.' },
      },
      operations: {
        update: async (req) => {
          const sealed = req.data.sealed;
          if (typeof sealed !== 'string' || sealed === '') throw badRequest("'sealed' must be a non-empty string");
          return { rawBody: { sealed: await core.runForwardedCeremony(sealed) } };
        },
      },
    },
  ];
}
