import type { Field, Request, Response } from '../../core/backend.js';
import { badRequest } from '../../core/errors.js';
import { assertAssignable } from '../../core/policy/builtin.js';
import { setOwn } from '../../core/own-keys.js';
import { authView } from '../../core/token-views.js';
import type { NewToken, TokenEntry, TokenStore } from '../../core/token-store.js';
import { globMatches } from '../glob.js';
import { roleDefaultsToBatch, type TokenRole } from './roles.js';

export const createFields: Record<string, Field> = {
  id: { type: 'string', description: 'The token value to use (root only); random if unset.' },
  policies: { type: 'string-list', description: "Policies of the token; the parent's when unset." },
  meta: { type: 'map', description: 'String key/value metadata, shown in audit logs.' },
  no_parent: { type: 'bool', description: 'Create an orphan token (root or sudo only).' },
  no_default_policy: { type: 'bool', description: 'Do not attach the default policy.' },
  renewable: { type: 'bool', description: 'Whether the token can be renewed.', default: true },
  ttl: { type: 'duration', description: 'TTL of the token.' },
  lease: { type: 'duration', description: 'Legacy alias of ttl.' },
  explicit_max_ttl: { type: 'duration', description: 'A hard cap on the token lifetime, renewals included.' },
  display_name: { type: 'string', description: 'Name shown in audit logs.' },
  num_uses: { type: 'int', description: 'How many requests the token may make; 0 is unlimited.' },
  period: { type: 'duration', description: 'Makes a periodic token, renewed to this period each time.' },
  type: { type: 'string', description: 'Token type: "service" (the default) or "batch".' },
  entity_alias: { type: 'string', description: 'Not supported: Cofre has no identity store.' },
};

export interface MountTtls {
  defaultTtl: number;
  maxTtl: number;
}

/**
 * Vault's display name rule: "token-" and the name, every character but ASCII letters, digits and "-" replaced
 * by "-", one trailing "-" dropped. Vault caps no length; the request body limits already bound it.
 */
export function tokenDisplayName(name: unknown): string {
  if (typeof name !== 'string' || name === '') return 'token';
  return `token-${name}`.replace(/[^a-zA-Z0-9-]/g, '-').replace(/-$/, '');
}

/** Vault's policyutil.SanitizePolicies: trimmed, lower-cased, without duplicates; "root" alone if present. */
function sanitize(policies: string[], addDefault: boolean): string[] {
  const out = [...new Set(policies.map((p) => p.trim().toLowerCase()).filter((p) => p !== ''))];
  if (out.includes('root')) return ['root'];
  if (addDefault && !out.includes('default')) out.push('default');
  return out;
}

const inGlobs = (globs: string[], value: string): boolean => globs.some((g) => globMatches(g, value));

/**
 * The policies of a token created against a role that sets allowed or disallowed policies, as Vault's
 * handleCreateCommon: such a role replaces the parent-subset rule. Returns undefined for a role without any.
 */
function rolePolicies(role: TokenRole, requested: string[], noDefault: boolean, parent: TokenEntry) {
  const lists = [role.allowed_policies, role.disallowed_policies, role.allowed_policies_glob];
  if (!lists.some((l) => l.length > 0) && role.disallowed_policies_glob.length === 0) return undefined;
  const addDefault =
    !noDefault &&
    !role.token_no_default_policy &&
    !role.disallowed_policies.includes('default') &&
    !inGlobs(role.disallowed_policies_glob, 'default');
  let policies = requested.length > 0 ? sanitize(requested, addDefault) : [];
  if (role.allowed_policies.length > 0 || role.allowed_policies_glob.length > 0) {
    const allowed = sanitize(role.allowed_policies, addDefault);
    if (policies.length === 0) policies = allowed;
    else {
      const globs = sanitize(role.allowed_policies_glob, false);
      for (const p of policies) {
        if (!allowed.includes(p) && !inGlobs(globs, p)) {
          throw badRequest(
            `token policies (${goList(policies)}) must be subset of the role's allowed policies (${goList(allowed)}) ` +
              `or glob policies (${goList(globs)})`,
          );
        }
      }
    }
  } else if (policies.length === 0) policies = sanitize(parent.policies, addDefault);
  for (const p of policies) {
    if (role.disallowed_policies.includes(p) || inGlobs(role.disallowed_policies_glob, p)) {
      throw badRequest(`token policy "${p}" is disallowed by this role`);
    }
  }
  return policies;
}

/** A Go %q of a string slice, as Vault's messages print it: ["a" "b"]. */
const goList = (list: string[]): string => `[${list.map((s) => JSON.stringify(s)).join(' ')}]`;

/** The smaller of a value of the request and one of the role, with Vault's warning when both are set. */
function lesser(requested: number, fromRole: number, what: string, warnings: string[]): number {
  if (fromRole === 0) return requested;
  if (requested === 0) return fromRole;
  const value = Math.min(requested, fromRole);
  warnings.push(`${what} specified both during creation call and in role; using the lesser value of ${value} seconds`);
  return value;
}

/**
 * auth/token/create, create-orphan and create/:role_name, with Vault's rules for types, policies, orphans and TTLs
 * (handleCreateCommon).
 */
export async function createToken(
  store: TokenStore,
  parent: TokenEntry,
  callerHasSudo: boolean,
  req: Request,
  ttls: MountTtls,
  forceOrphan: boolean,
  role?: TokenRole,
): Promise<Response> {
  const d = req.data;
  const warnings: string[] = [];
  const parentIsRoot = parent.policies.includes('root');
  if (parent.type === 'batch') throw badRequest('batch tokens cannot create more tokens');
  // A child (service or batch) of a limited-use token would let it escape its use count, as Vault says.
  if (parent.numUses > 0) throw badRequest('restricted use token cannot generate child tokens');
  const noDefault = d.no_default_policy === true;

  // The type: asked for, or the role's (a role of type service or batch decides; default-* only suggest).
  let type = typeof d.type === 'string' ? d.type : '';
  if (role?.token_type === 'service' || role?.token_type === 'batch') type = role.token_type;
  else if (role && type === '' && roleDefaultsToBatch(role)) type = 'batch';
  if (type === 'default') type = ''; // older clients send "default" for "the default"
  if (type !== '' && type !== 'service' && type !== 'batch') throw badRequest("invalid 'token_type' value");
  const batch = type === 'batch';
  if (batch) {
    const set = (d.explicit_max_ttl as number | undefined)
      ? 'explicit_max_ttl'
      : (d.num_uses as number | undefined)
        ? 'num_uses'
        : (d.period as number | undefined)
          ? 'period'
          : '';
    if (set) throw badRequest(`batch tokens cannot have "${set}" set`);
  }

  const numUsesAsked = (d.num_uses as number | undefined) ?? 0;
  if (numUsesAsked < 0) throw badRequest('number of uses cannot be negative');
  if (d.entity_alias !== undefined && d.entity_alias !== '') {
    throw badRequest(
      role ? "invalid 'entity_alias' value" : "'entity_alias' is only allowed in combination with token role",
    );
  }
  let renewable = !batch && d.renewable !== false;
  let numUses = numUsesAsked;
  let path = `auth/token/${req.path.replace(/\/+$/, '')}`;
  if (role) {
    if (!role.renewable) renewable = false;
    // A batch token has no use count: one asked of a role that limits uses (a default-* type lets the caller choose
    // the type) would be a token of that role without its limit. Vault issues it so; Cofre refuses.
    if (batch && role.token_num_uses > 0) {
      throw badRequest(
        `role "${role.name}" limits its tokens to ${role.token_num_uses} uses (token_num_uses), which a batch token ` +
          'cannot count: ask for a service token',
      );
    }
    // 0 is unlimited: a role's limit applies when the request sets none or a larger one.
    if (role.token_num_uses > 0 && (numUses === 0 || role.token_num_uses < numUses)) numUses = role.token_num_uses;
    if (role.path_suffix) path = `${path}/${role.path_suffix}`;
  }
  // Root or sudo (on this create path), as in Vault's isSudo.
  const privileged = parentIsRoot || callerHasSudo;
  if (d.id !== undefined && !privileged) throw badRequest('root or sudo privileges required to specify token id');

  const requested = (d.policies as string[] | undefined) ?? [];
  let policies = role ? rolePolicies(role, requested, noDefault, parent) : undefined;
  if (!policies) {
    policies = requested.map((p) => p.trim().toLowerCase()).filter((p) => p !== '');
    // As Vault's handleCreateCommon: without policies asked for, the parent's as they are; with some, "default" is
    // added for a privileged caller, or when the parent has it (a parent made without it could otherwise hand its
    // children the default policy it lacks).
    let addDefault = false;
    if (policies.length === 0) policies = parent.policies.filter((p) => p !== 'default' || !noDefault);
    else if (!privileged) {
      const allowed = new Set(parent.policies);
      const extra = policies.filter((p) => p !== 'default' && !allowed.has(p));
      if (extra.length > 0) throw badRequest('child policies must be subset of parent');
      addDefault = !noDefault && allowed.has('default');
    } else addDefault = !noDefault;
    if (!policies.includes('root') && addDefault && !policies.includes('default')) policies.push('default');
  }
  if (noDefault) policies = policies.filter((p) => p !== 'default');
  assertAssignable(policies);
  const root = policies.includes('root');
  if (root && !parentIsRoot) throw badRequest('root tokens may not be created without parent token being root');
  if (root && batch) throw badRequest('batch tokens cannot be root tokens');

  let orphan = forceOrphan;
  if (role)
    orphan = role.orphan; // a role decides, and lets a caller without sudo make orphans
  else if (d.no_parent === true) {
    if (!forceOrphan && !parentIsRoot && !callerHasSudo) {
      throw badRequest('root or sudo privileges required to create orphan token');
    }
    orphan = true;
  }
  // A role's CIDR blocks replace the parent's; without a role a child keeps its parent's.
  let boundCidrs = role && role.token_bound_cidrs.length > 0 ? role.token_bound_cidrs : undefined;
  if (!role && !orphan && parent.boundCidrs) boundCidrs = parent.boundCidrs;

  let explicitMaxTtl = (d.explicit_max_ttl as number | undefined) ?? 0;
  let period = (d.period as number | undefined) ?? 0;
  // A periodic token can live forever by renewing: as in Vault, only root or sudo may ask for one (a role may).
  if (period > 0 && !parentIsRoot && !callerHasSudo) {
    throw badRequest('root or sudo privileges required to create periodic token');
  }
  if (role) {
    // A batch token keeps no explicit max TTL of its own, but the role's still caps its TTL (below), as in Vault.
    explicitMaxTtl = lesser(explicitMaxTtl, role.token_explicit_max_ttl, 'Explicit max TTL', warnings);
    if (!batch) period = lesser(period, role.token_period, 'Period', warnings);
  }
  let ttl = (d.ttl as number | undefined) ?? (d.lease as number | undefined) ?? 0;
  if (period > 0 && ttls.maxTtl > 0 && period > ttls.maxTtl) period = ttls.maxTtl;
  if (ttl === 0 && period === 0 && !root) ttl = ttls.defaultTtl;
  if (period === 0 && ttls.maxTtl > 0 && ttl > ttls.maxTtl) ttl = ttls.maxTtl;
  if (explicitMaxTtl > 0 && (ttl === 0 || ttl > explicitMaxTtl)) ttl = explicitMaxTtl;
  // A periodic role's token lives a period at most unless renewed; a batch token cannot be renewed, so one period.
  const rolePeriod = batch ? (role?.token_period ?? 0) : 0;
  if (rolePeriod > 0 && (ttl === 0 || ttl > rolePeriod)) ttl = rolePeriod;
  if (ttl === 0 && period === 0) {
    // A token that never expires (only a root token can be one) comes only from one that never expires either.
    if (parent.expireTime > 0) {
      throw badRequest('expiring root tokens cannot create non-expiring root tokens');
    }
    renewable = false; // it would have nothing to renew; nor is it bound to CIDR blocks, as in Vault
    boundCidrs = undefined;
  }

  const meta: Record<string, string> = {};
  for (const [k, v] of Object.entries((d.meta as Record<string, unknown> | undefined) ?? {})) {
    if (typeof v !== 'string') throw badRequest(`meta value for "${k}" must be a string`);
    setOwn(meta, k, v);
  }
  const spec: NewToken = {
    policies,
    meta,
    displayName: tokenDisplayName(d.display_name),
    numUses,
    ttl,
    explicitMaxTtl,
    period,
    renewable,
    parentHash: orphan ? '' : parent.hash,
    path,
    ...(typeof d.id === 'string' && d.id !== '' ? { id: d.id } : {}),
    ...(boundCidrs ? { boundCidrs } : {}),
    // The role is shown on lookup and checked again on renewal (a token of a deleted role is not renewed).
    ...(role ? { role: role.name, internal: { role: role.name } } : {}),
  };
  const { token, entry } = batch ? await store.createBatch(spec) : await store.create(spec);
  return { auth: authView(entry, token), ...(warnings.length > 0 ? { warnings } : {}) };
}
