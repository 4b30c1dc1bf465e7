// When a holder of a lease acts on it: the multi-cluster pipeline's credential keeper (src/clusters/) and the
// operator's dynamic CofreSecrets (src/kube/operator/) keep database credentials alive by the same two rules.

/** A lease's times, in ms since the epoch. */
export interface LeaseTimes {
  /** The TTL it was issued (and is renewed) with. */
  ttlMs: number;
  issueTime: number;
  expireTime: number;
  /** The latest it can be renewed to (its max TTL, or its token's expiry, whichever is first). */
  maxExpireTime: number;
}

/** Renewed when a third of its TTL is left (about two thirds into it). */
export const renewAt = (lease: LeaseTimes): number => lease.expireTime - lease.ttlMs / 3;

/** Replaced two thirds into its whole possible life, so the replacement has time to reach its readers. */
export const reissueAt = (lease: LeaseTimes): number =>
  lease.issueTime + ((lease.maxExpireTime - lease.issueTime) * 2) / 3;

/** How long a replaced credential stays valid when its readers do not show the new one first: 30 minutes. */
export const DEFAULT_GRACE_SECONDS = 30 * 60;
