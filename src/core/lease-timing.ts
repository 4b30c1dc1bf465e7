// When a holder of a lease acts on it: the multi-cluster pipeline's credential keeper (src/clusters/) and the
// operator's dynamic CofreSecrets (src/kube/operator/) keep database credentials alive by the same two rules.
//
// The renewal rule is the one every holder uses (src/client/renewal.ts): renewed two thirds into its TTL. The
// replacement rule differs from the in-pod agent's `planRenewal`, on purpose: these holders know a lease's max TTL
// from the start (Cofre's sys/leases/lookup answers `max_expire_time`) and their readers see a new credential only
// after a rollout, so they replace two thirds into the lease's whole possible life; the agent, the KMS plugin and the
// CSI provider learn of the max TTL only when a renewal is capped, and their readers see the change at once.
import { renewAfterMs } from '../client/renewal.js';

/** A lease's times, in ms since the epoch. */
export interface LeaseTimes {
  /** The TTL it was issued (and is renewed) with. */
  ttlMs: number;
  issueTime: number;
  expireTime: number;
  /** The latest it can be renewed to (its max TTL, or its token's expiry, whichever is first). */
  maxExpireTime: number;
}

/** Renewed two thirds into its TTL (a third of it left), as every holder does. */
export const renewAt = (lease: LeaseTimes): number => lease.expireTime - lease.ttlMs + renewAfterMs(lease.ttlMs);

/** Replaced two thirds into its whole possible life, so the replacement has time to reach its readers. */
export const reissueAt = (lease: LeaseTimes): number =>
  lease.issueTime + renewAfterMs(lease.maxExpireTime - lease.issueTime);

/** How long a replaced credential stays valid when its readers do not show the new one first: 30 minutes. */
export const DEFAULT_GRACE_SECONDS = 30 * 60;
