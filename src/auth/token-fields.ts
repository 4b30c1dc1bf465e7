import type { Backend, Field, LoginAuth } from '../core/backend.js';
import type { Storage } from '../core/storage.js';
import { parseCidrs } from '../core/cidr.js';
import { badRequest } from '../core/errors.js';

/**
 * The token_* fields every auth method's roles (or users) share, as Vault's tokenutil: what the tokens issued at
 * login look like. One module, so that every method parses, shows and applies them alike.
 */
export interface TokenParams {
  token_policies: string[];
  token_ttl: number;
  token_max_ttl: number;
  token_period: number;
  token_num_uses: number;
  token_no_default_policy: boolean;
  token_bound_cidrs: string[];
  /** Vault's token types: "default" (or "default-service") and "service" issue service tokens, "batch" (or "default-batch") batch tokens. */
  token_type: TokenTypeName;
}

export const TOKEN_TYPES = ['default', 'service', 'batch', 'default-service', 'default-batch'] as const;
export type TokenTypeName = (typeof TOKEN_TYPES)[number];

/** Whether a role's token_type issues batch tokens (a role has no caller to choose: the "default-" types are the type). */
export const issuesBatch = (type: TokenTypeName): boolean => type === 'batch' || type === 'default-batch';

/** Parses a token_type value as Vault's tokenutil does; "" is the default. */
export function parseTokenType(value: unknown): TokenTypeName {
  if (value === '') return 'default';
  if (typeof value === 'string' && (TOKEN_TYPES as readonly string[]).includes(value)) return value as TokenTypeName;
  throw badRequest(`invalid 'token_type' value ${JSON.stringify(value)}`);
}

export const tokenFields: Record<string, Field> = {
  token_policies: { type: 'string-list', description: 'Policies of the tokens issued at login.' },
  policies: { type: 'string-list', description: 'Legacy alias of token_policies.' },
  token_ttl: { type: 'duration', description: 'TTL of the tokens issued at login; 0 is the mount default.' },
  ttl: { type: 'duration', description: 'Legacy alias of token_ttl.' },
  token_max_ttl: { type: 'duration', description: 'Maximum TTL of the tokens issued at login, renewals included.' },
  max_ttl: { type: 'duration', description: 'Legacy alias of token_max_ttl.' },
  token_explicit_max_ttl: { type: 'duration', description: 'Accepted as token_max_ttl when that is unset.' },
  token_period: { type: 'duration', description: 'Makes the issued tokens periodic, renewed to this each time.' },
  period: { type: 'duration', description: 'Legacy alias of token_period.' },
  token_num_uses: { type: 'int', description: 'Use limit of the issued tokens; 0 is unlimited.' },
  token_no_default_policy: { type: 'bool', description: 'Do not attach the default policy.' },
  token_type: {
    type: 'string',
    description: 'Type of the issued tokens: "service", "batch", "default", "default-service" or "default-batch".',
  },
  token_bound_cidrs: { type: 'string-list', description: 'CIDR blocks the issued tokens may be used from.' },
  bound_cidrs: { type: 'string-list', description: 'Legacy alias of token_bound_cidrs.' },
};

export const NO_TOKEN_PARAMS: TokenParams = {
  token_policies: [],
  token_ttl: 0,
  token_max_ttl: 0,
  token_period: 0,
  token_num_uses: 0,
  token_no_default_policy: false,
  token_bound_cidrs: [],
  token_type: 'default',
};

/** A list field as roles store it: trimmed, without empty entries. */
export function cleanList(value: unknown): string[] {
  return ((value as string[] | undefined) ?? []).map((s) => s.trim()).filter((s) => s !== '');
}

/**
 * Only the token parameters of a role or user, picked by name: what a read may show of them, so that nothing else
 * the record holds (a password hash, an internal id) can reach an answer through tokenParamsView.
 */
export function tokenParamsOf(record: TokenParams): TokenParams {
  return {
    token_policies: record.token_policies,
    token_ttl: record.token_ttl,
    token_max_ttl: record.token_max_ttl,
    token_period: record.token_period,
    token_num_uses: record.token_num_uses,
    token_no_default_policy: record.token_no_default_policy,
    token_bound_cidrs: record.token_bound_cidrs,
    token_type: record.token_type,
  };
}

/**
 * The token parameters of a write: each field the request names (or its legacy alias) replaces the current
 * value, the others stay, as a Vault role update does.
 */
export function tokenParamsFrom(data: Record<string, unknown>, current: TokenParams = NO_TOKEN_PARAMS): TokenParams {
  const given = (name: string, alias?: string): unknown => data[name] ?? (alias ? data[alias] : undefined);
  const numUses = (given('token_num_uses') as number | undefined) ?? current.token_num_uses;
  if (numUses < 0) throw badRequest('"token_num_uses" cannot be negative');
  const policies = given('token_policies', 'policies');
  const cidrs = given('token_bound_cidrs', 'bound_cidrs');
  const params: TokenParams = {
    token_policies: policies === undefined ? current.token_policies : cleanList(policies).map((p) => p.toLowerCase()),
    token_ttl: (given('token_ttl', 'ttl') as number | undefined) ?? current.token_ttl,
    token_max_ttl:
      (given('token_max_ttl', 'max_ttl') as number | undefined) ??
      (data.token_explicit_max_ttl as number | undefined) ??
      current.token_max_ttl,
    token_period: (given('token_period', 'period') as number | undefined) ?? current.token_period,
    token_num_uses: numUses,
    token_no_default_policy: (data.token_no_default_policy as boolean | undefined) ?? current.token_no_default_policy,
    token_bound_cidrs: cidrs === undefined ? current.token_bound_cidrs : cleanList(cidrs),
    token_type: data.token_type === undefined ? current.token_type : parseTokenType(data.token_type),
  };
  parseCidrs(params.token_bound_cidrs, 'token_bound_cidrs');
  if (issuesBatch(params.token_type)) {
    if (params.token_period !== 0) {
      throw badRequest("'token_type' cannot be 'batch' or 'default_batch' when set to generate periodic tokens");
    }
    if (params.token_num_uses !== 0) {
      throw badRequest(
        "'token_type' cannot be 'batch' or 'default_batch' when set to generate tokens with limited use count",
      );
    }
  }
  if (params.token_max_ttl > 0 && params.token_ttl > params.token_max_ttl) {
    throw badRequest('"token_ttl" cannot be greater than "token_max_ttl"');
  }
  return params;
}

/** The parameters as a role read shows them, with Vault's legacy names beside. */
export function tokenParamsView(p: TokenParams): Record<string, unknown> {
  return {
    ...p,
    token_explicit_max_ttl: 0,
    policies: p.token_policies,
    ttl: p.token_ttl,
    max_ttl: p.token_max_ttl,
    period: p.token_period,
    bound_cidrs: p.token_bound_cidrs,
  };
}

/** The login a role's parameters describe; the method adds who logged in. */
export function loginAuthFrom(
  p: TokenParams,
  who: { displayName: string; metadata?: Record<string, string>; internal?: Record<string, unknown> },
): LoginAuth {
  const policies = [...new Set(p.token_policies)];
  if (!p.token_no_default_policy && !policies.includes('default')) policies.push('default');
  return {
    policies,
    displayName: who.displayName,
    ...(who.metadata ? { metadata: who.metadata } : {}),
    ...(who.internal ? { internal: who.internal } : {}),
    ttl: p.token_ttl,
    maxTtl: p.token_max_ttl,
    period: p.token_period,
    numUses: p.token_num_uses,
    boundCidrs: p.token_bound_cidrs,
    renewable: true,
    ...(issuesBatch(p.token_type) ? { tokenType: 'batch' as const } : {}),
  };
}

/**
 * The renewAuth of a method whose logins name a role (LoginAuth.internal.role): as Vault's, a token is renewed
 * only while its role still exists and still grants the policies the token has; the role's max TTL applies.
 */
export function renewWhileRoleHolds(
  read: (storage: Storage, role: string) => Promise<TokenParams | undefined>,
  /** What the method calls what a login names: "role", or "user" for userpass. */
  noun = 'role',
): NonNullable<Backend['renewAuth']> {
  return async ({ internal, policies, storage }) => {
    const name = typeof internal.role === 'string' ? internal.role : '';
    const role = name ? await read(storage, name) : undefined;
    if (!role) throw badRequest(`${noun} "${name}" no longer exists; the token cannot be renewed`);
    const granted = loginAuthFrom(role, { displayName: '' }).policies;
    const same = granted.length === policies.length && granted.every((p) => policies.includes(p));
    if (!same) throw badRequest(`the policies of ${noun} "${name}" have changed; the token cannot be renewed`);
    return { maxTtl: role.token_max_ttl };
  };
}
