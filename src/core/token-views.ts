import type { AuthInfo } from './backend.js';
import type { TokenEntry } from './token-store.js';

const iso = (ms: number): string => new Date(ms).toISOString();

/** A token entry as auth/token/lookup* shows it. The token itself is shown only to its holder. */
export function lookupView(entry: TokenEntry, token: string | undefined): Record<string, unknown> {
  const ttl = entry.expireTime === 0 ? 0 : Math.max(0, Math.floor((entry.expireTime - Date.now()) / 1000));
  return {
    accessor: entry.accessor,
    creation_time: entry.creationTime,
    creation_ttl: entry.creationTtl,
    display_name: entry.displayName,
    entity_id: '',
    expire_time: entry.expireTime === 0 ? null : iso(entry.expireTime),
    explicit_max_ttl: entry.explicitMaxTtl,
    id: token ?? '',
    issue_time: iso(entry.creationTime * 1000),
    meta: Object.keys(entry.meta).length > 0 ? entry.meta : null,
    num_uses: entry.numUses,
    orphan: entry.parentHash === '',
    path: entry.path,
    period: entry.period || undefined,
    policies: entry.policies,
    renewable: entry.renewable && entry.creationTtl > 0,
    ...(entry.role ? { role: entry.role } : {}),
    ...(entry.boundCidrs && entry.boundCidrs.length > 0 ? { bound_cidrs: entry.boundCidrs } : {}),
    ttl,
    type: entry.type ?? 'service',
  };
}

/** The auth block of a response that hands out or renews a token. */
export function authView(entry: TokenEntry, token: string): AuthInfo {
  // A token just made: what was granted (rounded down when a parent's expiry capped it), not what is left of it now.
  const ttl =
    entry.expireTime === 0
      ? 0
      : Math.max(0, Math.min(entry.creationTtl, Math.round((entry.expireTime - Date.now()) / 1000)));
  return {
    client_token: token,
    accessor: entry.accessor,
    policies: entry.policies,
    token_policies: entry.policies,
    metadata: Object.keys(entry.meta).length > 0 ? entry.meta : null,
    lease_duration: ttl,
    renewable: entry.renewable && entry.creationTtl > 0,
    entity_id: '',
    token_type: entry.type ?? 'service',
    orphan: entry.parentHash === '',
    num_uses: entry.numUses,
  };
}
