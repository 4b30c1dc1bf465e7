// Renewing with the API (auth/token/renew-self, sys/leases/renew): what the in-pod agent, the KMS plugin and the CSI
// provider do to keep what they hold alive. Each answers the TTL granted, in seconds (0 when none was).
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
