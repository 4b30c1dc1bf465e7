import type { Field, PathRecord, Request, WrappingToken } from '../backend.js';
import type { Core } from '../core.js';
import { badRequest } from '../errors.js';
import { withWrappingToken, wrapInfoOf, wrappedResponse } from '../wrapping.js';

/**
 * sys/wrapping/*: wrap posted data, look a wrapping token up, unwrap it and rewrap it (Vault's API). The core
 * validates the wrapping token of lookup, unwrap and rewrap before authorising the request (PathRecord
 * wrappingToken), so a used or unknown one is Vault's 400 whoever asks.
 */

const tokenField: Record<string, Field> = {
  token: { type: 'string', description: 'The wrapping token; without it, the request’s own token.' },
};

function wrappingOf(req: Request): WrappingToken {
  if (!req.wrapping) throw new Error('the wrapping token was not validated');
  return req.wrapping;
}

export function wrappingPaths(core: Core): PathRecord[] {
  return [
    {
      pattern: 'wrapping/wrap',
      summary: 'Wraps the posted data in a new wrapping token (the request must ask for wrapping).',
      freeForm: true,
      operations: {
        update: async (req) => {
          if (!req.wrapTtl) throw badRequest('endpoint requires response wrapping to be used');
          return { data: { ...req.raw } };
        },
      },
    },
    {
      pattern: 'wrapping/lookup',
      storesNothing: true,
      summary: 'Looks up a wrapping token’s creation time, TTL and path without using it.',
      fields: tokenField,
      // As in Vault: whoever holds a wrapping token may check it before unwrapping, with no token of their own.
      unauthenticated: true,
      wrappingToken: true,
      operations: {
        read: async (req) => ({ data: lookupView(await wrapInfoOf(core, wrappingOf(req))) }),
        update: async (req) => ({ data: lookupView(await wrapInfoOf(core, wrappingOf(req))) }),
      },
    },
    {
      pattern: 'wrapping/unwrap',
      summary: 'Unwraps a wrapping token: the wrapped response, exactly once.',
      fields: tokenField,
      wrappingToken: true,
      operations: {
        update: async (req) => {
          const wrapping = wrappingOf(req);
          return withWrappingToken(core, wrapping, async () => {
            // The original answer as it would have been sent; parsed here so the audit entry hashes its values.
            const body: unknown = JSON.parse(await wrappedResponse(core, wrapping));
            return { rawBody: body, contentType: 'application/json', status: 200 };
          });
        },
      },
    },
    {
      pattern: 'wrapping/rewrap',
      summary: 'Moves a wrapped response to a new wrapping token, revoking the old one.',
      fields: tokenField,
      wrappingToken: true,
      operations: {
        update: async (req) => {
          const wrapping = wrappingOf(req);
          return withWrappingToken(core, wrapping, async () => {
            const info = await wrapInfoOf(core, wrapping);
            const body = await wrappedResponse(core, wrapping);
            return { wrap: { ttl: info.creation_ttl, creationPath: info.creation_path, body } };
          });
        },
      },
    },
  ];
}

function lookupView(info: { creation_ttl: number; creation_time: string; creation_path: string }) {
  return { creation_ttl: info.creation_ttl, creation_time: info.creation_time, creation_path: info.creation_path };
}
