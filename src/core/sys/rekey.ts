import type { PathRecord } from '../backend.js';
import type { Core } from '../core.js';
import { badRequest } from '../errors.js';
import { decodeKey } from './seal.js';

function keyOf(data: Record<string, unknown>): Buffer {
  const key = data.key;
  if (typeof key !== 'string' || key === '') throw badRequest("'key' must be specified in request body as JSON");
  return decodeKey(key);
}

const nonceOf = (data: Record<string, unknown>): string => (typeof data.nonce === 'string' ? data.nonce : '');

const shareFields = {
  key: { type: 'string' as const, description: 'One unseal key share, hex or base64.' },
  nonce: { type: 'string' as const, description: 'The nonce of the rekey (or of its verification).' },
};

/**
 * sys/rekey/*: Vault's rekey of the unseal key shares. Unauthenticated, as in Vault: a threshold of the current
 * shares is the authority. Answers are bare JSON objects, as Vault's. How the new shares are committed without a
 * window in which no shares open the store is explained in src/core/rekey.ts.
 */
export function rekeyPaths(core: Core): PathRecord[] {
  return [
    {
      pattern: 'rekey/init',
      summary: 'Reads, starts or cancels the rekey of the unseal key shares.',
      unauthenticated: true,
      fields: {
        secret_shares: { type: 'int', description: 'Number of new key shares.' },
        secret_threshold: { type: 'int', description: 'Number of new shares needed to unseal.' },
        require_verification: {
          type: 'bool',
          description: 'Keep the old shares until a threshold of the new ones is given to sys/rekey/verify.',
        },
        pgp_keys: { type: 'string-list', description: 'Not supported: PGP encryption of the new shares.' },
        backup: { type: 'bool', description: 'Not supported: a stored backup of PGP-encrypted shares.' },
        stored_shares: { type: 'int', description: 'Ignored: Shamir seals store no shares.' },
      },
      operations: {
        read: async () => ({ rawBody: await core.ceremonies.rekey.status() }),
        update: async (req) => {
          const shares = req.data.secret_shares;
          const threshold = req.data.secret_threshold;
          if (typeof shares !== 'number') throw badRequest('missing required field "secret_shares"');
          if (typeof threshold !== 'number') throw badRequest('missing required field "secret_threshold"');
          const status = await core.ceremonies.rekey.start({
            shares,
            threshold,
            requireVerification: req.data.require_verification === true,
            pgpKeys: (req.data.pgp_keys as string[] | undefined) ?? [],
            backup: req.data.backup === true,
          });
          return { rawBody: status };
        },
        delete: async () => {
          await core.ceremonies.rekey.cancel();
          return undefined;
        },
      },
    },
    {
      pattern: 'rekey/update',
      summary: 'Submits one current unseal key share; at the threshold, answers the new shares.',
      unauthenticated: true,
      fields: shareFields,
      operations: {
        update: async (req) => ({ rawBody: await core.ceremonies.rekey.update(keyOf(req.data), nonceOf(req.data)) }),
      },
    },
    {
      pattern: 'rekey/verify',
      summary: 'Reads, advances (with a NEW key share) or restarts the verification of the new shares.',
      unauthenticated: true,
      fields: shareFields,
      operations: {
        read: async () => ({ rawBody: await core.ceremonies.rekey.verifyStatus() }),
        update: async (req) => ({ rawBody: await core.ceremonies.rekey.verify(keyOf(req.data), nonceOf(req.data)) }),
        delete: async () => ({ rawBody: await core.ceremonies.rekey.restartVerification() }),
      },
    },
  ];
}
