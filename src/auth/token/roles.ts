import { assertExistenceAsAuthorised } from '../../core/authorised-existence.js';
import type { Field, PathRecord, Request } from '../../core/backend.js';
import { badRequest, notFound } from '../../core/errors.js';
import { changeJson } from '../../core/json-change.js';
import type { Storage } from '../../core/storage.js';
import { getJson } from '../../core/storage-view.js';
import { cleanList, issuesBatch, NO_TOKEN_PARAMS, tokenParamsFrom, type TokenParams } from '../token-fields.js';

/**
 * Token roles, Vault's auth/token/roles/:role_name: what auth/token/create/:role_name may issue. A role can let a
 * token carry policies its parent does not have (allowed_policies), forbid some (disallowed_policies), make
 * orphans without sudo, periodic tokens without sudo, and gives the tokens a creation path of their own, so that
 * revoke-prefix can revoke every token a role (or one revision of it, path_suffix) issued.
 */
export interface TokenRole extends TokenParams {
  name: string;
  allowed_policies: string[];
  disallowed_policies: string[];
  allowed_policies_glob: string[];
  disallowed_policies_glob: string[];
  orphan: boolean;
  renewable: boolean;
  path_suffix: string;
  token_explicit_max_ttl: number;
  /** The deprecated period and explicit_max_ttl fields as last written, shown back as Vault does. */
  period: number;
  explicit_max_ttl: number;
}

/** Vault's framework.GenericNameRegex: a word character at both ends, word characters, "-" and "." between. */
export const ROLE_NAME = '\\w(?:[\\w.-]*\\w)?';

const list = (description: string): Field => ({ type: 'string-list', description });
const duration = (description: string): Field => ({ type: 'duration', description });

/** Vault's role fields, with only the token_* fields its token store allows on a role (tokenutil's allow list). */
export const roleFields: Record<string, Field> = {
  role_name: { type: 'string', description: 'Name of the role.' },
  allowed_policies: list("Policies tokens of this role may have, instead of a subset of the parent's."),
  disallowed_policies: list('Policies tokens of this role may never have.'),
  allowed_policies_glob: list('Like allowed_policies, as globs ("*" matches any run of characters).'),
  disallowed_policies_glob: list('Like disallowed_policies, as globs.'),
  orphan: { type: 'bool', description: 'Tokens of this role have no parent (no sudo needed).' },
  renewable: { type: 'bool', description: 'Whether tokens of this role can be renewed (default true).' },
  path_suffix: { type: 'string', description: 'Appended to the creation path, for revoke-prefix by revision.' },
  allowed_entity_aliases: list('Not supported: Cofre has no identity store.'),
  token_explicit_max_ttl: duration('A hard cap on the lifetime of the tokens, renewals included.'),
  explicit_max_ttl: duration("Deprecated: use 'token_explicit_max_ttl'."),
  token_period: duration('Makes the tokens periodic (no sudo needed).'),
  period: duration("Deprecated: use 'token_period'."),
  token_type: { type: 'string', description: '"service", "batch", "default-service" or "default-batch".' },
  token_no_default_policy: { type: 'bool', description: 'Do not attach the default policy.' },
  token_num_uses: { type: 'int', description: 'Use limit of the tokens; 0 is unlimited.' },
  token_bound_cidrs: list('CIDR blocks the tokens may be used from.'),
  bound_cidrs: list("Deprecated: use 'token_bound_cidrs'."),
};

/** Vault's pathSuffixSanitize, anchored here, with no empty segment: the suffix becomes part of a lease ID. */
const PATH_SUFFIX = /^\w(?:[\w.-]*\w)?(?:\/\w(?:[\w.-]*\w)?)*$/;

const roleKey = (name: string): string => `roles/${name}`;

export async function readRole(storage: Storage, name: string): Promise<TokenRole | undefined> {
  const stored = await getJson<TokenRole>(storage, roleKey(name));
  return stored ? { ...NO_TOKEN_PARAMS, ...stored } : undefined;
}

/** A role from a write: on update only the fields the write names change, as Vault's tokenStoreRoleCreateUpdate. */
export function roleFrom(
  name: string,
  data: Record<string, unknown>,
  current: TokenRole | undefined,
): {
  role: TokenRole;
  warnings: string[];
} {
  const warnings: string[] = [];
  if (cleanList(data.allowed_entity_aliases).length > 0) {
    throw badRequest('"allowed_entity_aliases" is not supported: Cofre has no identity store or entity aliases');
  }
  const suffix = data.path_suffix as string | undefined;
  if (suffix !== undefined && suffix !== '') {
    if (suffix.includes('..')) throw badRequest('error registering path suffix: path cannot contain parent references');
    if (!PATH_SUFFIX.test(suffix)) {
      throw badRequest(
        'given role path suffix contains invalid characters; must be word characters, "-", "." and "/" between ' +
          'segments, starting and ending with a word character',
      );
    }
  }
  // As Vault stores them: lower-cased, without duplicates, sorted (strutil.RemoveDuplicates); the allowed lists go
  // through policyutil.SanitizePolicies, where "root" stands for every policy and so is kept alone.
  const dedupe = (v: unknown) => [...new Set(cleanList(v).map((p) => p.toLowerCase()))].sort();
  const lower = (v: unknown) => {
    const policies = dedupe(v);
    return policies.includes('root') ? ['root'] : policies;
  };
  // The shared token_* fields (type, period, num_uses, CIDRs, no_default_policy) go through token-fields as for
  // every other method; the explicit max TTL is the token store's own.
  const shared = { ...data };
  delete shared.token_explicit_max_ttl;
  delete shared.explicit_max_ttl;
  const params = tokenParamsFrom(shared, current ?? NO_TOKEN_PARAMS);
  const given = <T>(key: string, fallback: T): T => (data[key] !== undefined ? (data[key] as T) : fallback);

  let explicitMaxTtl = current?.token_explicit_max_ttl ?? 0;
  let legacyExplicit = current?.explicit_max_ttl ?? 0;
  if (data.token_explicit_max_ttl !== undefined) {
    explicitMaxTtl = data.token_explicit_max_ttl as number;
    legacyExplicit = 0;
    if (data.explicit_max_ttl !== undefined) {
      warnings.push(
        "Both 'token_explicit_max_ttl' and deprecated 'explicit_max_ttl' value supplied, ignoring the deprecated value",
      );
    }
  } else if (data.explicit_max_ttl !== undefined) {
    explicitMaxTtl = legacyExplicit = data.explicit_max_ttl as number;
  }
  let legacyPeriod = current?.period ?? 0;
  if (data.token_period !== undefined) {
    legacyPeriod = 0;
    if (data.period !== undefined) {
      warnings.push("Both 'token_period' and deprecated 'period' value supplied, ignoring the deprecated value");
    }
  } else if (data.period !== undefined) legacyPeriod = data.period as number;
  if (data.token_period !== undefined) params.token_period = data.token_period as number;

  const role: TokenRole = {
    ...params,
    // A role has no caller to choose: "default" is stored as Vault stores it.
    token_type: params.token_type === 'default' ? 'default-service' : params.token_type,
    name,
    allowed_policies:
      data.allowed_policies !== undefined ? lower(data.allowed_policies) : (current?.allowed_policies ?? []),
    disallowed_policies:
      data.disallowed_policies !== undefined ? dedupe(data.disallowed_policies) : (current?.disallowed_policies ?? []),
    allowed_policies_glob:
      data.allowed_policies_glob !== undefined
        ? lower(data.allowed_policies_glob)
        : (current?.allowed_policies_glob ?? []),
    disallowed_policies_glob:
      data.disallowed_policies_glob !== undefined
        ? dedupe(data.disallowed_policies_glob)
        : (current?.disallowed_policies_glob ?? []),
    orphan: given('orphan', current?.orphan ?? false),
    renewable: given('renewable', current?.renewable ?? true),
    path_suffix: given('path_suffix', current?.path_suffix ?? ''),
    token_explicit_max_ttl: explicitMaxTtl,
    period: legacyPeriod,
    explicit_max_ttl: legacyExplicit,
  };
  if (role.token_type === 'batch') {
    if (!role.orphan) {
      throw badRequest("'token_type' cannot be 'batch' when role is set to generate non-orphan tokens");
    }
    if (role.token_period !== 0) {
      throw badRequest("'token_type' cannot be 'batch' when role is set to generate periodic tokens");
    }
    if (role.renewable)
      throw badRequest("'token_type' cannot be 'batch' when role is set to generate renewable tokens");
    if (role.token_explicit_max_ttl !== 0) {
      throw badRequest("'token_type' cannot be 'batch' when role is set to generate tokens with an explicit max TTL");
    }
  }
  return { role, warnings };
}

/** A role as Vault's tokenStoreRoleRead shows it. */
export function roleView(role: TokenRole): Record<string, unknown> {
  return {
    period: role.period,
    token_period: role.token_period,
    explicit_max_ttl: role.explicit_max_ttl,
    token_explicit_max_ttl: role.token_explicit_max_ttl,
    disallowed_policies: role.disallowed_policies,
    allowed_policies: role.allowed_policies,
    disallowed_policies_glob: role.disallowed_policies_glob,
    allowed_policies_glob: role.allowed_policies_glob,
    name: role.name,
    orphan: role.orphan,
    path_suffix: role.path_suffix,
    renewable: role.renewable,
    token_type: role.token_type,
    allowed_entity_aliases: [],
    token_no_default_policy: role.token_no_default_policy,
    ...(role.token_bound_cidrs.length > 0 ? { token_bound_cidrs: role.token_bound_cidrs } : {}),
    ...(role.token_num_uses > 0 ? { token_num_uses: role.token_num_uses } : {}),
  };
}

/** Whether a role issues batch tokens when the caller does not ask for a type. */
export const roleDefaultsToBatch = (role: TokenRole): boolean => issuesBatch(role.token_type);

/** auth/token/roles (LIST) and auth/token/roles/:role_name. */
export function rolePaths(): PathRecord[] {
  const name = (req: Request): string => req.params.role_name ?? '';
  return [
    {
      pattern: 'roles/?',
      summary: 'Lists the token roles.',
      operations: {
        list: async (req) => {
          const keys = await req.storage.list('roles/');
          if (keys.length === 0) throw notFound();
          return { data: { keys } };
        },
      },
    },
    {
      pattern: `roles/(?<role_name>${ROLE_NAME})`,
      summary: 'Creates, reads, updates or deletes a token role.',
      fields: roleFields,
      exists: async (req) => (await readRole(req.storage, name(req))) !== undefined,
      operations: {
        read: async (req) => {
          const role = await readRole(req.storage, name(req));
          if (!role) throw notFound();
          return { data: roleView(role) };
        },
        create: (req) => writeRole(req),
        update: (req) => writeRole(req),
        delete: async (req) => {
          await req.storage.delete(roleKey(name(req)));
          return undefined;
        },
      },
    },
  ];

  // On the role as stored when the write commits: a role deleted or made since the request was authorised asks the
  // ACL again (assertExistenceAsAuthorised), as a create of a role is its own capability.
  async function writeRole(req: Request) {
    let warnings: string[] = [];
    await changeJson<TokenRole>(req.storage, roleKey(name(req)), async (stored) => {
      await assertExistenceAsAuthorised(req, stored !== undefined);
      const made = roleFrom(name(req), req.data, stored && { ...NO_TOKEN_PARAMS, ...stored });
      warnings = made.warnings;
      return made.role;
    });
    return warnings.length > 0 ? { data: null, warnings } : undefined;
  }
}
