import type { BackendFactory, Field, PathRecord, Request, Response } from '../../core/backend.js';
import type { Core } from '../../core/core.js';
import { badRequest, CofreError } from '../../core/errors.js';
import { renewalLimits } from '../../core/login.js';
import { SYSTEM_DEFAULT_TTL, SYSTEM_MAX_TTL } from '../../core/expiration.js';
import { createFields, createToken, type MountTtls } from './create.js';
import { readRole, ROLE_NAME, rolePaths } from './roles.js';
import { tidyPath } from './tidy.js';
import { authView, lookupView } from '../../core/token-views.js';
import type { TokenEntry } from '../../core/token-store.js';

const tokenField: Record<string, Field> = { token: { type: 'string', description: 'The token.' } };
const accessorField: Record<string, Field> = { accessor: { type: 'string', description: 'The token accessor.' } };
const incrementField: Record<string, Field> = {
  increment: { type: 'duration', description: 'Requested extension of the TTL, from now.' },
};

/** The token auth method at auth/token/: Vault's token store endpoints over the core's TokenStore. */
export function tokenBackend(getCore: () => Core): BackendFactory {
  return (ctx) => {
    const core = getCore();
    const store = core.tokens;
    const ttls = (): MountTtls => {
      const entry = core.mounts.get('auth', ctx.mountPoint.replace(/^auth\//, ''))?.entry;
      return {
        defaultTtl: entry?.config.default_lease_ttl || SYSTEM_DEFAULT_TTL,
        maxTtl: entry?.config.max_lease_ttl || SYSTEM_MAX_TTL,
      };
    };
    const self = async (req: Request): Promise<TokenEntry> => {
      if (!req.caller) throw new CofreError(403, 'permission denied');
      return req.caller.token;
    };
    /** The token named in the body; `unknown` is what the endpoint answers when it is not a live token. */
    const byToken = async (req: Request, unknown: () => CofreError): Promise<TokenEntry> => {
      const token = req.data.token as string | undefined;
      if (!token) throw badRequest('missing token ID');
      const entry = await store.lookup(token);
      if (!entry) throw unknown();
      return entry;
    };
    // Vault's answers for a token that does not exist: lookup is refused as a bad token (403), renew and
    // revoke-orphan are bad requests.
    const badToken = () => new CofreError(403, 'bad token');
    const notFoundToRenew = () => badRequest('token not found');
    const notFoundToRevoke = () => badRequest('token to revoke not found');
    const notBatch = (entry: TokenEntry, what: string): TokenEntry => {
      if (entry.type === 'batch') throw badRequest(`batch tokens cannot be ${what}`);
      return entry;
    };
    const byAccessor = async (req: Request): Promise<TokenEntry> => {
      const accessor = req.data.accessor as string | undefined;
      if (!accessor) throw badRequest('missing accessor');
      const entry = await store.lookupAccessor(accessor);
      if (!entry) throw badRequest('invalid accessor');
      return entry;
    };
    const hasSudo = async (req: Request): Promise<boolean> =>
      req.caller !== undefined &&
      (await core.policies.acl(req.caller.policies)).check(`${ctx.mountPoint}${req.path}`, 'update').sudo;
    const renew = async (entry: TokenEntry, req: Request, token: string | undefined): Promise<Response> => {
      notBatch(entry, 'renewed');
      // The method that issued the token has its say first: a token of a deleted role is not renewed.
      const { maxTtl } = await renewalLimits(core, entry);
      const renewed = await store.renew(entry, (req.data.increment as number | undefined) ?? 0, maxTtl);
      return {
        auth: { ...authView(renewed.entry, token ?? ''), lease_duration: renewed.ttl, client_token: token ?? '' },
      };
    };
    /** Vault's warning for each policy of a new token that does not exist (yet): the token is made all the same. */
    const warnMissingPolicies = async (response: Response): Promise<Response> => {
      const missing: string[] = [];
      for (const name of response.auth?.policies ?? []) {
        if (!(await core.policies.read(name))) missing.push(`Policy "${name}" does not exist`);
      }
      if (missing.length === 0) return response;
      return { ...response, warnings: [...(response.warnings ?? []), ...missing] };
    };
    const revokeTree = async (entry: TokenEntry | undefined) => {
      if (entry) await store.revokeTree(notBatch(entry, 'revoked').hash);
      return undefined;
    };

    const paths: PathRecord[] = [
      {
        pattern: 'create',
        summary: 'Creates a token, a child of the caller unless no_parent is set.',
        fields: createFields,
        operations: {
          update: async (req) =>
            warnMissingPolicies(await createToken(store, await self(req), await hasSudo(req), req, ttls(), false)),
        },
      },
      {
        pattern: `create/(?<role_name>${ROLE_NAME})`,
        summary: 'Creates a token against a token role.',
        fields: { ...createFields, role_name: { type: 'string', description: 'Name of the role.' } },
        operations: {
          update: async (req) => {
            const parent = await self(req);
            const role = await readRole(req.storage, req.params.role_name ?? '');
            if (!role) throw badRequest('unknown role ' + (req.params.role_name ?? ''));
            return warnMissingPolicies(await createToken(store, parent, await hasSudo(req), req, ttls(), false, role));
          },
        },
      },
      {
        pattern: 'create-orphan',
        summary: 'Creates a token with no parent.',
        fields: createFields,
        operations: {
          update: async (req) =>
            warnMissingPolicies(await createToken(store, await self(req), await hasSudo(req), req, ttls(), true)),
        },
      },
      {
        pattern: 'lookup',
        storesNothing: true,
        summary: 'Looks up a token.',
        fields: tokenField,
        operations: {
          update: async (req) => ({ data: lookupView(await byToken(req, badToken), req.data.token as string) }),
          read: async (req) => ({ data: lookupView(await byToken(req, badToken), req.data.token as string) }),
        },
      },
      {
        pattern: 'lookup-self',
        storesNothing: true,
        summary: 'Looks up the calling token.',
        fields: tokenField,
        operations: {
          read: async (req) => ({ data: lookupView(await self(req), req.caller!.clientToken) }),
          update: async (req) => ({ data: lookupView(await self(req), req.caller!.clientToken) }),
        },
      },
      {
        pattern: 'lookup-accessor',
        storesNothing: true,
        summary: 'Looks up a token by its accessor.',
        fields: accessorField,
        operations: { update: async (req) => ({ data: lookupView(await byAccessor(req), undefined) }) },
      },
      {
        pattern: 'renew',
        summary: 'Renews a token.',
        fields: { ...tokenField, ...incrementField },
        operations: {
          update: async (req) => renew(await byToken(req, notFoundToRenew), req, req.data.token as string),
        },
      },
      {
        pattern: 'renew-self',
        summary: 'Renews the calling token.',
        fields: incrementField,
        operations: { update: async (req) => renew(await self(req), req, undefined) },
      },
      {
        pattern: 'renew-accessor',
        summary: 'Renews a token by its accessor.',
        fields: { ...accessorField, ...incrementField },
        operations: { update: async (req) => renew(await byAccessor(req), req, undefined) },
      },
      {
        pattern: 'revoke',
        summary: 'Revokes a token and all its children.',
        fields: tokenField,
        // Vault answers 204 for a token that does not exist: revoking is idempotent.
        operations: {
          update: async (req) => {
            if (!req.data.token) throw badRequest('missing token ID');
            return revokeTree(await store.lookup(req.data.token as string));
          },
        },
      },
      {
        pattern: 'revoke-self',
        summary: 'Revokes the calling token and all its children.',
        operations: { update: async (req) => revokeTree(await self(req)) },
      },
      {
        pattern: 'revoke-accessor',
        summary: 'Revokes a token by its accessor, with its children.',
        fields: accessorField,
        operations: { update: async (req) => revokeTree(await byAccessor(req)) },
      },
      {
        pattern: 'revoke-orphan',
        summary: 'Revokes a token but not its children, which become orphans.',
        fields: tokenField,
        sudo: true,
        operations: {
          update: async (req) => {
            await store.revokeOrphan(notBatch(await byToken(req, notFoundToRevoke), 'revoked').hash);
            return undefined;
          },
        },
      },
      {
        pattern: 'accessors/?',
        summary: 'Lists the accessors of all tokens.',
        sudo: true,
        operations: { list: async () => ({ data: { keys: await store.accessors() } }) },
      },
      ...rolePaths(),
      tidyPath(core),
    ];
    return {
      type: 'token',
      help: 'The token store: creates, looks up, renews and revokes tokens, by token or by accessor, and its roles.',
      paths,
      // As Vault's authRenew: a token created against a role is renewed only while the role exists.
      renewAuth: async ({ internal, storage }) => {
        if (typeof internal.role !== 'string') return;
        if (!(await readRole(storage, internal.role))) {
          throw badRequest(`original token role "${internal.role}" could not be found, not renewing`);
        }
      },
    };
  };
}
