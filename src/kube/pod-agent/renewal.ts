// When to act on a lease (a token's or a credential's): renew at about two thirds of what was granted; once a
// renewal grants less than was asked (the max TTL caps it) or the lease is not renewable, the next step is to
// replace it (log in again, issue the credential again) at two thirds of what is left, well before it ends.

export interface Step {
  action: 'renew' | 'replace';
  inMs: number;
}

export const RENEW_FRACTION = 2 / 3;

export function planRenewal(requestedSeconds: number, grantedSeconds: number, renewable: boolean): Step {
  const inMs = Math.max(100, Math.floor(grantedSeconds * 1000 * RENEW_FRACTION));
  // Cofre grants exactly the increment asked for unless the max TTL caps it.
  const capped = grantedSeconds < requestedSeconds;
  return { action: renewable && !capped ? 'renew' : 'replace', inMs };
}
