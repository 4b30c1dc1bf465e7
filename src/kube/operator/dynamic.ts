// The lease of a dynamic CofreSecret's credential, held by the operator by the rules of the multi-cluster
// pipeline's credential keeper (src/core/lease-timing.ts): renewed when a third of its TTL is left, replaced two
// thirds into its max life (or when a renewal is refused, or the target lost what it held, or the source or target
// spec changed). A replaced lease is kept alive until the rollout of its replacement finished, or its grace period
// ended, whichever is first, and then revoked: running pods are never cut off by a rotation. Everything the
// operator needs to continue after a restart is in status (lease IDs and times, never a credential).
import { createHash } from 'node:crypto';
import { DEFAULT_GRACE_SECONDS, reissueAt, renewAt, type LeaseTimes } from '../../core/lease-timing.js';
import type { CofreAccess, Identity } from './cofre-client.js';
import { parseDuration } from './duration.js';
import { leaseOperations } from './metrics.js';
import { isLeaseOf, issueCredential, renewLease, revokeLease, type IssuedCredential } from './sources.js';
import type { CofreSecret, HeldLeaseStatus, RetiredLeaseStatus } from './types.js';

const iso = (ms: number): string => new Date(ms).toISOString();

function times(l: HeldLeaseStatus | RetiredLeaseStatus): LeaseTimes {
  const issueTime = 'issueTime' in l ? Date.parse(l.issueTime) : 0;
  return {
    ttlMs: l.ttlSeconds * 1000,
    issueTime,
    expireTime: Date.parse(l.expireTime),
    maxExpireTime: Date.parse(l.maxExpireTime),
  };
}

/** The digest of what a credential was written for: the source and the target's shape. */
export function specDigest(cs: CofreSecret): string {
  const { source, target } = cs.spec;
  return createHash('sha256').update(JSON.stringify({ source, target })).digest('hex').slice(0, 32);
}

export interface KeptLease {
  /** A credential issued by this call: the target must be written with it. Undefined: the target keeps its own. */
  issued?: IssuedCredential;
  lease: HeldLeaseStatus;
  retired: RetiredLeaseStatus[];
  /** Why a credential was issued, for the Event (never a value). */
  why?: string;
}

export class DynamicLeases {
  constructor(private readonly access: CofreAccess) {}

  /**
   * Keeps the current credential (renewing it when due) or issues a new one, retiring the old. `targetIntact`: the
   * target still holds what status says it does (a deleted or edited Secret cannot be refilled without a new
   * credential: the old one's value is nowhere else).
   */
  async keep(cs: CofreSecret, id: Identity, targetIntact: boolean): Promise<KeptLease> {
    const now = Date.now();
    // Only leases of this source count: anything else in status was not put there by us.
    const mine = (l: { id: string } | undefined) => l !== undefined && isLeaseOf(cs.spec.source, l.id);
    const held = mine(cs.status?.lease) ? cs.status!.lease : undefined;
    const retired = (cs.status?.retiredLeases ?? []).filter(mine);
    const forSpec = specDigest(cs);
    let why: string | undefined;
    if (!held) why = 'first credential';
    else if (held.forSpec !== forSpec) why = 'the source or target changed';
    else if (!targetIntact) why = 'the target no longer holds the credential';
    else if (now >= Date.parse(held.expireTime)) why = 'the lease expired';
    else if (now >= reissueAt(times(held))) why = 'the lease nears its max TTL';
    else if (now >= renewAt(times(held))) {
      try {
        const expireTime = await renewLease(this.access, id, held.id, held.ttlSeconds * 1000);
        leaseOperations.inc({ operation: 'renew', result: 'ok' });
        return {
          lease: { ...held, expireTime: iso(expireTime), lastRenewalTime: iso(now) },
          retired,
        };
      } catch (err) {
        leaseOperations.inc({ operation: 'renew', result: 'error' });
        why = `renewing the lease was refused (${(err as Error).message})`;
      }
    }
    if (!why) return { lease: held!, retired };
    const issued = await issueCredential(this.access, id, cs.spec.source).catch((err: unknown) => {
      leaseOperations.inc({ operation: 'issue', result: 'error' });
      throw err;
    });
    leaseOperations.inc({ operation: 'issue', result: 'ok' });
    const l = issued.lease;
    const lease: HeldLeaseStatus = {
      id: l.id,
      forSpec,
      ttlSeconds: Math.round(l.ttlMs / 1000),
      issueTime: iso(l.issueTime),
      expireTime: iso(l.expireTime),
      maxExpireTime: iso(l.maxExpireTime),
      renewable: l.renewable,
    };
    if (held) {
      const given = cs.spec.source.gracePeriod ? parseDuration(cs.spec.source.gracePeriod) : undefined;
      const grace = given ?? DEFAULT_GRACE_SECONDS * 1000;
      retired.push({
        id: held.id,
        replacedBy: '', // the new content's hash, filled in by the reconciler once it is known
        revokeAt: iso(Math.min(now + grace, Date.parse(held.maxExpireTime))),
        ttlSeconds: held.ttlSeconds,
        expireTime: held.expireTime,
        maxExpireTime: held.maxExpireTime,
      });
    }
    return { issued, lease, retired, why };
  }

  /**
   * Revokes the retired leases that can go: all of them once every pod of the targets carries the current content
   * (`rolledOut`), otherwise those past their grace period or expiry. The others are renewed when due. Returns those
   * still held; a revocation that fails is tried again on the next pass.
   */
  async tendRetired(id: Identity, retired: RetiredLeaseStatus[], rolledOut: boolean): Promise<RetiredLeaseStatus[]> {
    // keep() already dropped leases of other sources from the list it returned.
    const now = Date.now();
    const kept: RetiredLeaseStatus[] = [];
    for (const r of retired) {
      const t = times(r);
      if (rolledOut || now >= Date.parse(r.revokeAt) || now >= t.expireTime) {
        try {
          await revokeLease(this.access, id, r.id);
          leaseOperations.inc({ operation: 'revoke', result: 'ok' });
          continue;
        } catch {
          leaseOperations.inc({ operation: 'revoke', result: 'error' });
          kept.push(r);
          continue;
        }
      }
      if (now >= renewAt(t) && t.expireTime < Date.parse(r.revokeAt)) {
        try {
          const expireTime = await renewLease(this.access, id, r.id, t.ttlMs);
          leaseOperations.inc({ operation: 'renew', result: 'ok' });
          kept.push({ ...r, expireTime: iso(expireTime) });
        } catch {
          // Refused (revoked by hand, the role gone): no more attempts; it is let go at its expiry.
          leaseOperations.inc({ operation: 'renew', result: 'error' });
          kept.push({ ...r, revokeAt: iso(Math.min(Date.parse(r.revokeAt), t.expireTime)) });
        }
        continue;
      }
      kept.push(r);
    }
    return kept;
  }

  /** When the next renewal, replacement or revocation is due (ms since the epoch). */
  nextAt(lease: HeldLeaseStatus | undefined, retired: RetiredLeaseStatus[]): number | undefined {
    const at: number[] = [];
    if (lease) at.push(Math.min(renewAt(times(lease)), reissueAt(times(lease))));
    for (const r of retired) {
      const t = times(r);
      const revokeAt = Date.parse(r.revokeAt);
      at.push(t.expireTime < revokeAt ? Math.min(renewAt(t), revokeAt) : revokeAt);
    }
    return at.length > 0 ? Math.min(...at) : undefined;
  }

  /** The CofreSecret is deleted: every lease it holds is revoked (the database drops the roles). */
  async revokeAll(id: Identity, cs: CofreSecret): Promise<void> {
    const ids = [cs.status?.lease?.id, ...(cs.status?.retiredLeases ?? []).map((r) => r.id)];
    for (const leaseId of ids) {
      if (!leaseId || !isLeaseOf(cs.spec.source, leaseId)) continue;
      try {
        await revokeLease(this.access, id, leaseId);
        leaseOperations.inc({ operation: 'revoke', result: 'ok' });
      } catch (err) {
        leaseOperations.inc({ operation: 'revoke', result: 'error' });
        throw err;
      }
    }
  }

  /** A credential issued but not recorded (its target or status write failed): it goes rather than linger. */
  async discard(id: Identity, issued: IssuedCredential): Promise<void> {
    await revokeLease(this.access, id, issued.lease.id).catch(() => undefined);
  }
}
