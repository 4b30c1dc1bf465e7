import type { PathRecord } from '../backend.js';
import type { Core } from '../core.js';
import { badRequest } from '../errors.js';
import { decodeKey } from './seal.js';

/**
 * sys/generate-root/*: Vault's root token generation. Unauthenticated, as in Vault: the unseal key shares are the
 * authority, and the token comes back only XORed with the attempt's one-time password. Answers are bare JSON
 * objects (Vault's GenerateRootStatusResponse), not the envelope.
 */
export function generateRootPaths(core: Core): PathRecord[] {
  return [
    {
      pattern: 'generate-root/attempt',
      summary: 'Reads, starts or cancels the root token generation attempt.',
      unauthenticated: true,
      fields: {
        otp: {
          type: 'string',
          description: 'A base62 one-time password of otp_length characters; the server makes one when omitted.',
        },
        pgp_key: { type: 'string', description: 'Not supported: PGP encryption of the new root token.' },
      },
      operations: {
        read: async () => ({ rawBody: await core.ceremonies.rootGeneration.status() }),
        update: async (req) => ({
          rawBody: await core.ceremonies.rootGeneration.start({
            otp: req.data.otp as string | undefined,
            pgpKey: req.data.pgp_key as string | undefined,
          }),
        }),
        delete: async () => {
          await core.ceremonies.rootGeneration.cancel();
          return undefined;
        },
      },
    },
    {
      pattern: 'generate-root/update',
      summary: 'Submits one unseal key share towards the new root token.',
      unauthenticated: true,
      fields: {
        key: { type: 'string', description: 'One unseal key share, hex or base64.' },
        nonce: { type: 'string', description: 'The nonce of the attempt, as the attempt answered it.' },
      },
      operations: {
        update: async (req) => {
          const key = req.data.key;
          if (typeof key !== 'string' || key === '')
            throw badRequest("'key' must be specified in request body as JSON");
          const nonce = typeof req.data.nonce === 'string' ? req.data.nonce : '';
          return { rawBody: await core.ceremonies.rootGeneration.update(decodeKey(key), nonce) };
        },
      },
    },
  ];
}
