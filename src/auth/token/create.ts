import type { Field, Request, Response } from '../../core/backend.js';
import { badRequest } from '../../core/errors.js';
import { assertAssignable } from '../../core/policy/builtin.js';
import { setOwn } from '../../core/own-keys.js';
import { authView } from '../../core/token-views.js';
import type { TokenEntry, TokenStore } from '../../core/token-store.js';

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
  type: { type: 'string', description: 'Token type; only "service" is supported.' },
  entity_alias: { type: 'string', description: 'Not supported.' },
};

export interface MountTtls {
  defaultTtl: number;
  maxTtl: number;
}

/** auth/token/create and create-orphan, with Vault's rules for policies, orphans and TTLs. */
export async function createToken(
  store: TokenStore,
  parent: TokenEntry,
  callerHasSudo: boolean,
  req: Request,
  ttls: MountTtls,
  forceOrphan: boolean,
): Promise<Response> {
  const d = req.data;
  const parentIsRoot = parent.policies.includes('root');
  // The Go client sends "type": "" for "the default".
  if (d.type !== undefined && d.type !== '' && d.type !== 'service' && d.type !== 'default')
    throw badRequest('only service tokens are supported');
  if (d.id !== undefined && !parentIsRoot) throw badRequest('root or sudo privileges required to specify token id');
  const numUses = (d.num_uses as number | undefined) ?? 0;
  if (numUses < 0) throw badRequest('number of uses cannot be negative');
  const orphan = forceOrphan || d.no_parent === true;
  if (!forceOrphan && d.no_parent === true && !parentIsRoot && !callerHasSudo) {
    throw badRequest('root or sudo privileges required to create orphan token');
  }
  let policies = ((d.policies as string[] | undefined) ?? [])
    .map((p) => p.trim().toLowerCase())
    .filter((p) => p !== '');
  if (policies.length === 0) policies = parent.policies.filter((p) => p !== 'default' || d.no_default_policy !== true);
  else if (!parentIsRoot) {
    const allowed = new Set(parent.policies);
    const extra = policies.filter((p) => p !== 'default' && !allowed.has(p));
    if (extra.length > 0) throw badRequest('child policies must be subset of parent');
  }
  const root = policies.includes('root');
  if (root && !parentIsRoot) throw badRequest('root tokens may not be created by a non-root token');
  if (!root && d.no_default_policy !== true && !policies.includes('default')) policies.push('default');
  if (d.no_default_policy === true) policies = policies.filter((p) => p !== 'default');
  assertAssignable(policies);

  const period = (d.period as number | undefined) ?? 0;
  // A periodic token can live forever by renewing: as in Vault, only root or sudo may mint one.
  if (period > 0 && !parentIsRoot && !callerHasSudo) {
    throw badRequest('root or sudo privileges required to create periodic token');
  }
  const explicitMaxTtl = (d.explicit_max_ttl as number | undefined) ?? 0;
  let ttl = (d.ttl as number | undefined) ?? (d.lease as number | undefined) ?? 0;
  if (ttl === 0 && period === 0 && !root) ttl = ttls.defaultTtl;
  if (period === 0 && ttls.maxTtl > 0 && ttl > ttls.maxTtl) ttl = ttls.maxTtl;
  if (explicitMaxTtl > 0 && (ttl === 0 || ttl > explicitMaxTtl)) ttl = explicitMaxTtl;

  const meta: Record<string, string> = {};
  for (const [k, v] of Object.entries((d.meta as Record<string, unknown> | undefined) ?? {})) {
    if (typeof v !== 'string') throw badRequest(`meta value for "${k}" must be a string`);
    setOwn(meta, k, v);
  }
  const displayName = typeof d.display_name === 'string' && d.display_name !== '' ? `token-${d.display_name}` : 'token';
  const { token, entry } = await store.create({
    policies,
    meta,
    displayName,
    numUses,
    ttl,
    explicitMaxTtl,
    period,
    renewable: d.renewable !== false,
    parentHash: orphan ? '' : parent.hash,
    path: forceOrphan ? 'auth/token/create-orphan' : 'auth/token/create',
    ...(typeof d.id === 'string' && d.id !== '' ? { id: d.id } : {}),
  });
  return { auth: authView(entry, token) };
}
