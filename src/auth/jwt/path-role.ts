import type { Field, PathRecord } from '../../core/backend.js';
import { badRequest } from '../../core/errors.js';
import { parseDuration } from '../../core/fields.js';
import type { Storage } from '../../core/storage.js';
import { readStoredRole, rolePaths } from '../role-paths.js';
import { cleanList, tokenFields, tokenParamsFrom, type TokenParams } from '../token-fields.js';
import { boundClaimsProblem } from './claims.js';

export interface JwtRole extends TokenParams {
  role_type: 'jwt';
  bound_audiences: string[];
  bound_subject: string;
  bound_claims_type: 'string' | 'glob';
  bound_claims: Record<string, unknown>;
  claim_mappings: Record<string, string>;
  user_claim: string;
  user_claim_json_pointer: boolean;
  groups_claim: string;
  /** Seconds; 0 = Vault's default, negative = none. */
  clock_skew_leeway: number;
  expiration_leeway: number;
  not_before_leeway: number;
  /** OIDC-flow fields, kept so that a role reads back as written; the JWT login does not use them. */
  oidc_scopes: string[];
  allowed_redirect_uris: string[];
  verbose_oidc_logging: boolean;
  max_age: number;
}

/** Metadata keys a claim mapping may not write to. */
const RESERVED_METADATA = ['role'];

const fields: Record<string, Field> = {
  name: { type: 'string', description: 'Role name.' },
  role_type: { type: 'string', description: 'Only "jwt" (the default here): the OIDC login flow is not built.' },
  bound_audiences: { type: 'string-list', description: '"aud" values accepted; any match suffices.' },
  bound_subject: { type: 'string', description: 'The "sub" a token must carry.' },
  bound_claims_type: { type: 'string', description: 'How bound_claims values match: "string" (exact) or "glob".' },
  bound_claims: { type: 'map', description: 'Claims (name or JSON pointer) and the value(s) one of which must match.' },
  claim_mappings: { type: 'any', description: 'Claims (name or JSON pointer) copied into token metadata keys.' },
  user_claim: { type: 'string', description: 'The claim whose value names the user (display name), e.g. "sub".' },
  user_claim_json_pointer: { type: 'bool', description: 'user_claim is a JSON pointer.' },
  groups_claim: { type: 'string', description: 'A claim that must hold a list of group names.' },
  clock_skew_leeway: { type: 'any', description: 'Seconds of leeway on all time claims; 0 = 60, -1 = none.' },
  expiration_leeway: { type: 'any', description: 'Seconds added to iat/nbf when exp is missing; 0 = 150, -1 = none.' },
  not_before_leeway: { type: 'any', description: 'Seconds taken from exp when nbf and iat are missing; 0 = 150.' },
  oidc_scopes: { type: 'string-list', description: 'Accepted for compatibility (OIDC flow only).' },
  allowed_redirect_uris: { type: 'string-list', description: 'Accepted for compatibility (OIDC flow only).' },
  verbose_oidc_logging: { type: 'bool', description: 'Accepted for compatibility (OIDC flow only).' },
  max_age: { type: 'duration', description: 'Accepted for compatibility (OIDC flow only).' },
  ...tokenFields,
};

export function readRole(storage: Storage, name: string): Promise<JwtRole | undefined> {
  return readStoredRole<JwtRole>(storage, name);
}

/** Vault's TypeSignedDurationSecond: seconds or a duration string, negative allowed ("-1" disables). */
function signedSeconds(value: unknown, name: string): number {
  if (typeof value === 'number' && Number.isInteger(value) && value < 0) return value;
  if (typeof value === 'string' && /^\s*-/.test(value)) return -parseDuration(value.trim().slice(1), name);
  return parseDuration(value, name);
}

/** Vault's TypeKVPairs: an object of strings, or a list of "key=value". */
function kvPairs(value: unknown, name: string): Record<string, string> {
  const out: Record<string, string> = {};
  const put = (k: string, v: unknown): void => {
    if (typeof v !== 'string') throw badRequest(`invalid value for field "${name}": values must be strings`);
    Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  };
  const list = typeof value === 'string' ? value.split(',') : value;
  if (Array.isArray(list)) {
    for (const item of list) {
      if (typeof item !== 'string' || !item.includes('=')) {
        throw badRequest(`invalid value for field "${name}": expected "key=value" pairs`);
      }
      const at = item.indexOf('=');
      put(item.slice(0, at).trim(), item.slice(at + 1).trim());
    }
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) put(k, v);
  } else {
    throw badRequest(`invalid value for field "${name}": expected an object of strings`);
  }
  return out;
}

/** A role from a write; an update (current given) changes only the fields it names, as Vault's does. */
function roleFrom(d: Record<string, unknown>, current?: JwtRole): JwtRole {
  const roleType = (d.role_type as string | undefined) ?? current?.role_type ?? 'jwt';
  if (roleType === 'oidc') {
    throw badRequest('role_type "oidc" is not supported yet: the OIDC login flow is not built; use "jwt"');
  }
  if (roleType !== 'jwt') throw badRequest(`invalid 'role_type': ${JSON.stringify(roleType)} (only "jwt")`);
  const boundType = (d.bound_claims_type as string | undefined) ?? current?.bound_claims_type ?? 'string';
  if (boundType !== 'string' && boundType !== 'glob') {
    throw badRequest(`invalid 'bound_claims_type': ${JSON.stringify(boundType)} ("string" or "glob")`);
  }
  const boundClaims = (d.bound_claims as Record<string, unknown> | undefined) ?? current?.bound_claims ?? {};
  const problem = boundClaimsProblem(boundClaims, boundType === 'glob');
  if (problem) throw badRequest(problem);
  const mappings =
    d.claim_mappings !== undefined ? kvPairs(d.claim_mappings, 'claim_mappings') : (current?.claim_mappings ?? {});
  const targets = new Set<string>();
  for (const key of Object.values(mappings)) {
    if (RESERVED_METADATA.includes(key)) {
      throw badRequest(`metadata key ${JSON.stringify(key)} is reserved and may not be a mapping destination`);
    }
    if (key === '') throw badRequest('claim_mappings: a metadata key may not be empty');
    if (targets.has(key)) throw badRequest(`multiple keys are mapped to metadata key ${JSON.stringify(key)}`);
    targets.add(key);
  }
  const leewayOf = (name: 'clock_skew_leeway' | 'expiration_leeway' | 'not_before_leeway'): number =>
    d[name] !== undefined ? signedSeconds(d[name], name) : (current?.[name] ?? 0);
  const role: JwtRole = {
    role_type: 'jwt',
    bound_audiences: d.bound_audiences !== undefined ? cleanList(d.bound_audiences) : (current?.bound_audiences ?? []),
    bound_subject: (d.bound_subject as string | undefined) ?? current?.bound_subject ?? '',
    bound_claims_type: boundType,
    bound_claims: boundClaims,
    claim_mappings: mappings,
    user_claim: ((d.user_claim as string | undefined) ?? current?.user_claim ?? '').trim(),
    user_claim_json_pointer:
      (d.user_claim_json_pointer as boolean | undefined) ?? current?.user_claim_json_pointer ?? false,
    groups_claim: (d.groups_claim as string | undefined) ?? current?.groups_claim ?? '',
    clock_skew_leeway: leewayOf('clock_skew_leeway'),
    expiration_leeway: leewayOf('expiration_leeway'),
    not_before_leeway: leewayOf('not_before_leeway'),
    oidc_scopes: d.oidc_scopes !== undefined ? cleanList(d.oidc_scopes) : (current?.oidc_scopes ?? []),
    allowed_redirect_uris:
      d.allowed_redirect_uris !== undefined
        ? cleanList(d.allowed_redirect_uris)
        : (current?.allowed_redirect_uris ?? []),
    verbose_oidc_logging: (d.verbose_oidc_logging as boolean | undefined) ?? current?.verbose_oidc_logging ?? false,
    max_age: (d.max_age as number | undefined) ?? current?.max_age ?? 0,
    ...tokenParamsFrom(d, current),
  };
  if (role.user_claim === '') throw badRequest('a user claim must be defined on the role ("user_claim", e.g. "sub")');
  if (
    role.bound_audiences.length === 0 &&
    role.token_bound_cidrs.length === 0 &&
    role.bound_subject === '' &&
    Object.keys(role.bound_claims).length === 0
  ) {
    throw badRequest(
      'must have at least one bound constraint when creating/updating a role ' +
        '(bound_audiences, bound_subject, bound_claims or token_bound_cidrs)',
    );
  }
  return role;
}

export function jwtRolePaths(): PathRecord[] {
  return rolePaths<JwtRole>({
    method: 'JWT',
    binds: 'JWTs (by audience, subject and claims)',
    fields,
    from: roleFrom,
  });
}
