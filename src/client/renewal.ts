// Keeping what a client holds alive: renewing with the API (auth/token/renew-self, sys/leases/renew) and the one rule
// set for when to act on a lease. The in-pod agent, its exec leases, the KMS plugin and the CSI provider use all of
// it; the operator and the multi-cluster credential keeper use the renewal rule through src/core/lease-timing.ts.
import type { VaultClient } from './client.js';

/** Renews `token` by `increment` seconds; the TTL granted. */
export async function renewSelf(client: VaultClient, token: string, increment: number, what: string): Promise<number> {
  const res = (await client.request('PUT', 'auth/token/renew-self', { body: { increment }, token, what })) as {
    auth?: { lease_duration?: number };
  } | null;
  return res?.auth?.lease_duration ?? 0;
}

/** Renews lease `leaseId` by `increment` seconds with `token`; the TTL granted. */
export async function renewLease(
  client: VaultClient,
  token: string,
  leaseId: string,
  increment: number,
  what: string,
): Promise<number> {
  const res = (await client.request('PUT', 'sys/leases/renew', {
    body: { lease_id: leaseId, increment },
    token,
    what,
  })) as { lease_duration?: number } | null;
  return res?.lease_duration ?? 0;
}

/** A lease is renewed two thirds into what was granted: a third of it is left for retries. */
export const RENEW_FRACTION = 2 / 3;

/** How long after a grant of `grantedMs` to renew it (whole milliseconds, exact for multiples of 3). */
export const renewAfterMs = (grantedMs: number): number => Math.floor((grantedMs * 2) / 3);

export interface Step {
  action: 'renew' | 'replace';
  inMs: number;
}

/**
 * When to act on a lease (a token's or a credential's) just granted `grantedSeconds`: renew at two thirds of it;
 * once a renewal grants less than was asked (the max TTL caps it) or the lease is not renewable, replace it (log in
 * again, issue the credential again) at two thirds of what is left.
 *
 * Why the replacement is timed differently here than in src/core/lease-timing.ts (`reissueAt`, two thirds into the
 * lease's whole possible life): these holders learn of the max TTL only when a renewal is capped (a token's
 * lookup-self shows none, and Vault's leases show none either), and what they deliver reaches its reader at once
 * (a file rewritten in the same pod, a process signalled, the CSI driver's next poll). The operator and the
 * credential keeper know a lease's max TTL from sys/leases/lookup and must leave time for a rollout.
 */
export function planRenewal(requestedSeconds: number, grantedSeconds: number, renewable: boolean): Step {
  const inMs = Math.max(100, renewAfterMs(grantedSeconds * 1000));
  // Cofre grants exactly the increment asked for unless the max TTL caps it.
  const capped = grantedSeconds < requestedSeconds;
  return { action: renewable && !capped ? 'renew' : 'replace', inMs };
}
