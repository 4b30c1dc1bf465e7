import { randomUUID } from 'node:crypto';
import type { Field, PathRecord, Request, Response, SystemView } from '../../core/backend.js';
import { parseCidrs } from '../../core/cidr.js';
import { badRequest, CofreError, notFound } from '../../core/errors.js';
import { ROLE_IN_PATH, roleNameOf } from './path-role.js';
import {
  cidrSubset,
  isExpired,
  MAX_INPUT_BYTES,
  validRoleName,
  type AppRole,
  type AppRoleStore,
  type SecretIdEntry,
} from './store.js';

const roleName: Field = { type: 'string', description: 'Name of the role.' };

const generateFields: Record<string, Field> = {
  role_name: roleName,
  metadata: {
    type: 'any',
    description:
      'Metadata of the secret ID, shown in token lookups and audit logs: a JSON object of strings, as a string ' +
      '(as Vault takes it) or an object.',
  },
  cidr_list: { type: 'string-list', description: 'CIDR blocks the logins with this secret ID must come from.' },
  token_bound_cidrs: { type: 'string-list', description: 'CIDR blocks the tokens it logs in to may be used from.' },
  ttl: { type: 'duration', description: "Lifetime of the secret ID; at most the role's secret_id_ttl." },
  num_uses: { type: 'int', description: "Logins the secret ID allows; at most the role's secret_id_num_uses." },
};

const MAX_METADATA_KEYS = 64;

/** Vault's metadata: a JSON object of strings (or "k=v,k2=v2"), given as a string. */
export function parseMetadata(value: unknown): Record<string, string> {
  if (value === undefined || value === '') return {};
  let parsed: unknown = value;
  if (typeof value === 'string') {
    const text = value.trim();
    if (text.startsWith('{')) {
      try {
        parsed = JSON.parse(text);
      } catch {
        throw badRequest('failed to parse metadata: not a JSON object');
      }
    } else {
      parsed = Object.fromEntries(
        text.split(',').map((pair) => {
          const at = pair.indexOf('=');
          if (at <= 0) throw badRequest('failed to parse metadata: expected a JSON object or key=value pairs');
          return [pair.slice(0, at).trim(), pair.slice(at + 1).trim()];
        }),
      );
    }
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw badRequest('failed to parse metadata: not a JSON object');
  }
  const entries = Object.entries(parsed);
  if (entries.length > MAX_METADATA_KEYS) throw badRequest(`metadata has more than ${MAX_METADATA_KEYS} keys`);
  for (const [key, v] of entries) {
    if (typeof v !== 'string') {
      throw badRequest(`failed to parse metadata: the value of ${JSON.stringify(key.slice(0, 64))} is not a string`);
    }
  }
  // fromEntries defines own properties: a "__proto__" key stays a key.
  return Object.fromEntries(entries) as Record<string, string>;
}

/** The TTL a secret ID gets: the mount's max TTL caps it, as Vault's deriveSecretIDTTL. */
function derivedTtl(ttl: number, system: SystemView): number {
  const max = system.leaseTtls().maxTtl;
  return max > 0 && ttl > max ? max : ttl;
}

function secretView(entry: SecretIdEntry): Record<string, unknown> {
  return {
    secret_id_accessor: entry.secret_id_accessor,
    secret_id_num_uses: entry.secret_id_num_uses,
    secret_id_ttl: entry.secret_id_ttl,
    creation_time: entry.creation_time,
    // Vault shows Go's zero time for a secret ID that does not expire.
    expiration_time: entry.expiration_time || '0001-01-01T00:00:00Z',
    last_updated_time: entry.last_updated_time,
    metadata: entry.metadata,
    cidr_list: entry.cidr_list,
    token_bound_cidrs: entry.token_bound_cidrs,
  };
}

async function roleOrRefuse(store: AppRoleStore, req: Request): Promise<AppRole> {
  const name = roleNameOf(req);
  const role = await store.readRole(name);
  if (!role) throw badRequest(validRoleName(name) ? `role "${name}" does not exist` : 'invalid role name');
  return role;
}

function secretIdOf(req: Request): string {
  const secretId = ((req.data.secret_id as string | undefined) ?? '').trim();
  if (secretId === '') throw badRequest('missing secret_id');
  return secretId;
}

/** Generates (or registers a custom) secret ID, under the role's lock so that it cannot outlive a role deletion. */
async function issue(store: AppRoleStore, system: SystemView, req: Request, secretId: string): Promise<Response> {
  const name = roleNameOf(req).toLowerCase();
  return store.roleLocks.run(name, async () => {
    const role = await roleOrRefuse(store, req);
    if (!role.bind_secret_id) throw badRequest('bind_secret_id is not set on the role');
    const cidrList = ((req.data.cidr_list as string[] | undefined) ?? []).map((s) => s.trim()).filter(Boolean);
    parseCidrs(cidrList, 'cidr_list');
    if (!cidrSubset(cidrList, role.secret_id_bound_cidrs)) {
      throw badRequest('the CIDR blocks of "cidr_list" must lie within the role\'s secret_id_bound_cidrs');
    }
    const tokenCidrs = ((req.data.token_bound_cidrs as string[] | undefined) ?? [])
      .map((s) => s.trim())
      .filter(Boolean);
    parseCidrs(tokenCidrs, 'token_bound_cidrs');
    if (!cidrSubset(tokenCidrs, role.token_bound_cidrs)) {
      throw badRequest('the CIDR blocks of "token_bound_cidrs" must lie within the role\'s token_bound_cidrs');
    }
    let numUses = role.secret_id_num_uses;
    if (req.data.num_uses !== undefined) {
      numUses = req.data.num_uses as number;
      if (numUses < 0) throw badRequest('num_uses cannot be negative');
      if (role.secret_id_num_uses > 0 && (numUses === 0 || numUses > role.secret_id_num_uses)) {
        throw badRequest("num_uses cannot be higher than the role's secret_id_num_uses");
      }
    }
    let ttl = role.secret_id_ttl;
    if (req.data.ttl !== undefined) {
      ttl = req.data.ttl as number;
      if (role.secret_id_ttl > 0 && (ttl === 0 || ttl > role.secret_id_ttl)) {
        throw badRequest("ttl cannot be longer than the role's secret_id_ttl");
      }
    }
    const metadata = parseMetadata(req.data.metadata);
    const effectiveTtl = derivedTtl(ttl, system);
    const now = new Date();
    const accessor = randomUUID();
    await store.createSecret(role.name, secretId, {
      role_name: role.name,
      role_uid: role.uid,
      secret_id_accessor: accessor,
      secret_id_num_uses: numUses,
      secret_id_ttl: ttl,
      creation_time: now.toISOString(),
      expiration_time: effectiveTtl > 0 ? new Date(now.getTime() + effectiveTtl * 1000).toISOString() : '',
      last_updated_time: now.toISOString(),
      metadata,
      cidr_list: cidrList,
      token_bound_cidrs: tokenCidrs,
    });
    return {
      data: {
        secret_id: secretId,
        secret_id_accessor: accessor,
        secret_id_ttl: effectiveTtl,
        secret_id_num_uses: numUses,
      },
    };
  });
}

/**
 * The secret ID at key as lookups see it: an expired one is gone (and removed). Under the secret ID's lock.
 */
async function liveSecret(store: AppRoleStore, key: string, secretHmac: string): Promise<SecretIdEntry | undefined> {
  const entry = await store.readSecret(key, secretHmac);
  if (entry && isExpired(entry)) {
    await store.deleteSecret(key, entry);
    return undefined;
  }
  return entry;
}

/** role/:role_name/secret-id (generate, list), its lookup and destroy, the accessor paths and custom-secret-id. */
export function secretIdPaths(store: AppRoleStore, system: SystemView): PathRecord[] {
  const bySecretId = async (req: Request): Promise<{ key: string; secretHmac: string }> => {
    const role = await roleOrRefuse(store, req);
    const secretId = secretIdOf(req);
    // Not a secret ID this method issued; looked up as one that does not exist.
    if (Buffer.byteLength(secretId) > MAX_INPUT_BYTES) return { key: '', secretHmac: '' };
    return store.secretKey(role.name, secretId);
  };
  const byAccessor = async (req: Request): Promise<{ key: string; secretHmac: string }> => {
    const role = await roleOrRefuse(store, req);
    const accessor = ((req.data.secret_id_accessor as string | undefined) ?? '').trim();
    if (accessor === '') throw badRequest('missing secret_id_accessor');
    const found = await store.secretByAccessor(role.name, accessor);
    if (!found) throw new CofreError(404, 'failed to find accessor entry for secret_id_accessor');
    return found;
  };
  const lookup = async (found: { key: string; secretHmac: string }): Promise<Response | undefined> => {
    if (found.key === '') return undefined;
    const entry = await store.secretLocks.run(found.secretHmac, () => liveSecret(store, found.key, found.secretHmac));
    return entry ? { data: secretView(entry) } : undefined;
  };
  const destroy = async (found: { key: string; secretHmac: string }): Promise<boolean> => {
    if (found.key === '') return false;
    return store.secretLocks.run(found.secretHmac, async () => {
      const entry = await store.readSecret(found.key, found.secretHmac);
      if (entry) await store.deleteSecret(found.key, entry);
      return entry !== undefined;
    });
  };
  const secretIdField: Record<string, Field> = {
    role_name: roleName,
    secret_id: { type: 'string', description: 'The secret ID.' },
  };
  const accessorField: Record<string, Field> = {
    role_name: roleName,
    secret_id_accessor: { type: 'string', description: 'The accessor of the secret ID.' },
  };
  return [
    {
      pattern: `${ROLE_IN_PATH}/secret-id/?`,
      summary: 'Generates a secret ID for the role (write), or lists the accessors of its secret IDs (list).',
      fields: generateFields,
      operations: {
        update: (req) => issue(store, system, req, randomUUID()),
        list: async (req) => {
          const role = await roleOrRefuse(store, req);
          const keys = await store.accessors(role.name);
          if (keys.length === 0) throw notFound();
          return { data: { keys } };
        },
      },
    },
    {
      pattern: `${ROLE_IN_PATH}/custom-secret-id`,
      summary: 'Registers a secret ID of your choosing for the role.',
      fields: { ...generateFields, secret_id: { type: 'string', description: 'The secret ID to register.' } },
      operations: {
        update: (req) => {
          const secretId = secretIdOf(req);
          if (Buffer.byteLength(secretId) > MAX_INPUT_BYTES) {
            throw badRequest(`secret_id is longer than maximum of ${MAX_INPUT_BYTES} bytes`);
          }
          return issue(store, system, req, secretId);
        },
      },
    },
    {
      pattern: `${ROLE_IN_PATH}/secret-id/lookup/?`,
      summary: 'Reads the properties of a secret ID (never the secret ID itself).',
      fields: secretIdField,
      operations: { update: async (req) => lookup(await bySecretId(req)) },
    },
    {
      pattern: `${ROLE_IN_PATH}/secret-id/destroy/?`,
      summary: 'Destroys a secret ID: it logs in no more.',
      fields: secretIdField,
      operations: {
        update: async (req) => void (await destroy(await bySecretId(req))),
        delete: async (req) => void (await destroy(await bySecretId(req))),
      },
    },
    {
      pattern: `${ROLE_IN_PATH}/secret-id-accessor/lookup/?`,
      summary: 'Reads the properties of the secret ID an accessor names.',
      fields: accessorField,
      operations: { update: async (req) => lookup(await byAccessor(req)) },
    },
    {
      pattern: `${ROLE_IN_PATH}/secret-id-accessor/destroy/?`,
      summary: 'Destroys the secret ID an accessor names.',
      fields: accessorField,
      operations: {
        update: async (req) => {
          if (!(await destroy(await byAccessor(req)))) throw badRequest('invalid secret id accessor');
          return undefined;
        },
        delete: async (req) => {
          if (!(await destroy(await byAccessor(req)))) throw badRequest('invalid secret id accessor');
          return undefined;
        },
      },
    },
  ];
}
