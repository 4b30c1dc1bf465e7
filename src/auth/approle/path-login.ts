import type { PathRecord, Request } from '../../core/backend.js';
import { addressAllowed } from '../../core/cidr.js';
import { retryOnConflict } from '../../core/conflict-retry.js';
import { badRequest, CofreError } from '../../core/errors.js';
import { loginAuthFrom } from '../token-fields.js';
import { isExpired, MAX_INPUT_BYTES, type AppRole, type AppRoleStore, type SecretIdEntry } from './store.js';

/**
 * One message for a role ID or secret ID that does not work, whichever it was (as Vault since 1.13): a caller
 * learns nothing about which half was wrong, and nothing it sent is echoed back.
 */
const INVALID = 'invalid role or secret ID';

function refuseAddress(address: string, what: string): never {
  throw badRequest(`source address ${JSON.stringify(address)} unauthorized by CIDR restrictions on the ${what}`);
}

/**
 * Takes one use of the role's secret ID, under the secret ID's lock and checked at commit against other nodes: a
 * secret ID with n uses logs in n times, however many logins race for it on however many nodes. Refuses a secret
 * ID that does not exist, belongs to an earlier role of the same name, has expired (and removes it) or is bound to
 * other addresses (without taking a use).
 */
async function consumeSecretId(store: AppRoleStore, role: AppRole, req: Request): Promise<SecretIdEntry> {
  const secretId = ((req.data.secret_id as string | undefined) ?? '').trim();
  if (secretId === '') throw badRequest('missing secret_id');
  if (Buffer.byteLength(secretId) > MAX_INPUT_BYTES) throw badRequest(INVALID);
  const { key, secretHmac } = await store.secretKey(role.name, secretId);
  const consume = async (): Promise<SecretIdEntry> => {
    const read = await store.readSecretAsStored(key, secretHmac);
    if (!read || read.entry.role_uid !== role.uid) throw badRequest(INVALID);
    const { entry, stored } = read;
    if (isExpired(entry)) {
      await store.deleteSecret(key, entry);
      throw badRequest(INVALID);
    }
    if (!addressAllowed(entry.cidr_list, req.remoteAddress)) refuseAddress(req.remoteAddress, 'secret ID');
    await store.useSecret(key, entry, stored);
    return entry;
  };
  // Another node took a use in between: the next try reads what it left.
  return store.secretLocks.run(secretHmac, () =>
    retryOnConflict(consume, () => new CofreError(409, 'the secret ID kept changing on other nodes: try again')),
  );
}

/** auth/approle/login: a role ID, and a secret ID of that role unless the role does not bind one. */
export function loginPath(store: AppRoleStore): PathRecord {
  return {
    pattern: 'login',
    summary: 'Logs in with a role ID and a secret ID.',
    unauthenticated: true,
    fields: {
      role_id: { type: 'string', description: 'The role ID of the role.' },
      secret_id: { type: 'string', description: 'A secret ID of the role (unless the role does not bind one).' },
    },
    operations: {
      update: async (req) => {
        const roleId = ((req.data.role_id as string | undefined) ?? '').trim();
        if (roleId === '') throw badRequest('missing role_id');
        const role = await store.roleByRoleId(roleId);
        if (!role) throw badRequest(INVALID);
        // The role's binding is checked first: a login from elsewhere takes no use of a secret ID.
        if (!addressAllowed(role.secret_id_bound_cidrs, req.remoteAddress)) refuseAddress(req.remoteAddress, 'role');
        const entry = role.bind_secret_id ? await consumeSecretId(store, role, req) : undefined;
        const tokenCidrs =
          entry && entry.token_bound_cidrs.length > 0 ? entry.token_bound_cidrs : role.token_bound_cidrs;
        return {
          login: loginAuthFrom(
            { ...role, token_bound_cidrs: tokenCidrs },
            {
              displayName: role.name,
              // role_name last: a secret ID's metadata cannot claim another role.
              metadata: { ...(entry?.metadata ?? {}), role_name: role.name },
              // The uid tells this role from a later one of the same name, for renewals.
              internal: { role: role.name, role_uid: role.uid },
            },
          ),
        };
      },
    },
  };
}
