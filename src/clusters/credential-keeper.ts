import { retryOnConflict } from '../core/conflict-retry.js';
import type { BackgroundJob, Core } from '../core/core.js';
import { CofreError, permissionDenied } from '../core/errors.js';
import { isStorageConflict } from '../core/storage.js';
import { reissueAt, renewAt } from '../core/lease-timing.js';
import { issueCredential } from './database-source.js';
import { DEFAULT_GRACE_PERIOD, type DeliveryDefinition } from './definitions.js';
import { DesiredState } from './desired-state.js';
import type {
  ClusterStore,
  CredentialRead,
  CredentialRecord,
  CurrentCredential,
  HeldLease,
  RetiredLease,
} from './store.js';

/** A failed renewal, re-issue or issue is tried again after this. */
const RETRY_MS = 10_000;
const MAX_TIMER_MS = 2 ** 31 - 1;

/** What the keeper needs of the cluster service: the per-cluster revision bump and the fan-out. */
export interface KeeperHooks {
  /** The cluster's credentials of this delivery were replaced or revoked: its next revision. Undefined: gone. */
  bumpGeneration(cluster: string, clusterId: string, delivery: string): Promise<number | undefined>;
  refan(): void;
}

const key = (cluster: string, delivery: string): string => `${cluster}/${delivery}`;
const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

function toHeld(
  item: string,
  source: { mount: string; role: string },
  issued: Awaited<ReturnType<typeof issueCredential>>,
): CurrentCredential {
  const { lease } = issued;
  return {
    leaseId: lease.leaseId,
    item,
    mount: source.mount,
    role: source.role,
    ttlMs: lease.expireTime - lease.issueTime,
    issueTime: lease.issueTime,
    expireTime: lease.expireTime,
    maxExpireTime: lease.maxExpireTime,
    data: issued.data,
  };
}

function retire(lease: CurrentCredential, replacedBy: number, revokeAt: number): RetiredLease {
  const { data: _sealedNoMore, ...held } = lease;
  return { ...held, replacedBy, revokeAt };
}

/**
 * The database credentials the pipeline holds, one set per (cluster, delivery), and their leases' lives:
 * - issued when a cluster's bundle is sealed (`credentialsFor`, on whichever node serves the fetch);
 * - renewed a third of their TTL before they expire, and replaced two thirds into their max TTL or when a renewal
 *   is refused: the replacement is the cluster's next revision of the delivery, and no other cluster's;
 * - a replaced lease is revoked once the cluster's agent reports that revision (or a later one), or when the
 *   delivery's grace period ends, whichever comes first;
 * - everything of a cluster that is unplaced, deregistered or whose delivery is deleted is revoked at once.
 * Renewals and revocations run on one node, the one that runs the background jobs (core.addBackgroundJob); other
 * nodes only issue and record. Every lease is also the expiration manager's, so one that is forgotten still ends.
 */
export class CredentialKeeper implements BackgroundJob {
  private running = false;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Clusters with credential records (on the running node): a change of another cluster's record is no concern. */
  private readonly holders = new Set<string>();
  private pending: { all: boolean; clusters: Set<string> } | undefined;
  /** What this node did, for tests and metrics: which node renews and revokes shows here. */
  private readonly counts = { issued: 0, renewed: 0, replaced: 0, revoked: 0 };

  constructor(
    private readonly core: Core,
    private readonly store: ClusterStore,
    private readonly hooks: KeeperHooks,
  ) {}

  start(): void {
    this.running = true;
    void this.loadAll().catch(() => undefined);
  }

  stop(): void {
    this.running = false;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.holders.clear();
    this.pending = undefined;
  }

  snapshot(): { running: boolean; issued: number; renewed: number; replaced: number; revoked: number } {
    return { running: this.running, ...this.counts };
  }

  /** Another node changed more than it could name: every record is read again. */
  reload(): void {
    if (!this.running) return;
    this.stop();
    this.start();
  }

  private async loadAll(): Promise<void> {
    for (const { cluster, delivery } of await this.store.listCredentials()) {
      if (!this.running) return;
      this.holders.add(cluster);
      const record = await this.store.credential(cluster, delivery);
      if (record) this.arm(record);
    }
    // Placements, clusters or deliveries may have changed while no node ran this.
    this.reconcileSoon();
  }

  /**
   * Runs a change of one credential record under its lock here, and again from the record as stored when another
   * node changed it meanwhile (the write checks what was read): a fetch on any node issues, the node that runs the
   * background jobs renews, replaces and revokes, and neither may write over the other's leases.
   */
  private exclusive<T>(cluster: string, delivery: string, change: () => Promise<T>): Promise<T> {
    return this.store.locks.run(`credentials/${cluster}/${delivery}`, () =>
      retryOnConflict(
        change,
        () =>
          new CofreError(409, `the credentials of "${cluster}/${delivery}" kept changing on other nodes: try again`),
      ),
    );
  }

  // ---- issuing (any node) ---------------------------------------------------------------------------------------

  /**
   * This cluster's credentials for every database item of the delivery, issuing what is missing, changed or about
   * to expire. Returns them (item → fields) and the cluster's revision of the delivery they are sealed under.
   */
  async credentialsFor(
    cluster: { name: string; clusterId: string; enrolledAt?: string },
    delivery: DeliveryDefinition & { name: string; revision: number },
  ): Promise<{ credentials: Map<string, Record<string, string>>; revision: number }> {
    const { issued, ...result } = await this.issueMissing(cluster, delivery);
    // The caller checked the placement before; a deregistration or an unplacing since then was reconciled before
    // this record held what was just issued, so nothing revoked it. Checked again now that it is stored: a change
    // after this check finds the record.
    if (issued && !(await this.stillPlaced(cluster, delivery.name))) {
      // Only this cluster's record: the name may have been registered again meanwhile, with credentials of its own.
      await this.revokeAll(cluster.name, delivery.name, undefined, cluster.clusterId);
      throw permissionDenied(`delivery "${delivery.name}" is no longer placed on this cluster`);
    }
    return result;
  }

  private async stillPlaced(cluster: { name: string; clusterId: string }, delivery: string): Promise<boolean> {
    const state = await DesiredState.load(this.store, [cluster.name]);
    const record = state.clusters.get(cluster.name);
    return record?.clusterId === cluster.clusterId && state.selected(record).has(delivery);
  }

  private issueMissing(
    cluster: { name: string; clusterId: string; enrolledAt?: string },
    delivery: DeliveryDefinition & { name: string; revision: number },
  ): Promise<{ credentials: Map<string, Record<string, string>>; revision: number; issued: boolean }> {
    return this.exclusive(cluster.name, delivery.name, async () => {
      const read = await this.store.credentialRead(cluster.name, delivery.name);
      const now = Date.now();
      const record: CredentialRecord = read.record ?? {
        cluster: cluster.name,
        clusterId: cluster.clusterId,
        delivery: delivery.name,
        current: [],
        retired: [],
      };
      let changed = false;
      if (record.clusterId !== cluster.clusterId) {
        // An earlier registration of this name: nothing of it goes to the new cluster.
        record.retired.push(...record.current.map((c) => retire(c, 0, now)));
        record.current = [];
        record.clusterId = cluster.clusterId;
        changed = true;
      }
      const grace = (delivery.gracePeriod ?? DEFAULT_GRACE_PERIOD) * 1000;
      const enrolled = cluster.enrolledAt ? Date.parse(cluster.enrolledAt) : 0;
      const replaced: RetiredLease[] = [];
      const issuedHere: HeldLease[] = [];
      try {
        for (const item of delivery.items) {
          const source = item.database;
          if (!source) continue;
          const held = record.current.find((c) => c.item === item.name);
          // One that is still alive is renewed or replaced by the keeper in its time; an expired one is replaced here,
          // and so is one issued before the cluster enrolled its current keys: the old keys may be why it re-enrolled,
          // and they open the bundles that hold it.
          const usable =
            held &&
            held.mount === source.mount &&
            held.role === source.role &&
            held.expireTime > now &&
            held.issueTime >= enrolled;
          if (usable) continue;
          const issued = await issueCredential(this.core, source, { cluster: cluster.name, delivery: delivery.name });
          this.counts.issued++;
          changed = true;
          const made = toHeld(item.name, source, issued);
          issuedHere.push(made);
          record.current = [...record.current.filter((c) => c.item !== item.name), made];
          if (held) {
            const gone = held.expireTime <= now;
            const old = retire(held, 0, gone ? now : Math.min(now + grace, held.maxExpireTime));
            record.retired.push(old);
            replaced.push(old);
          }
        }
      } finally {
        if (changed) await this.save(record, replaced, read, issuedHere);
      }
      const fresh = await this.store.cluster(cluster.name);
      const generation = fresh?.clusterId === cluster.clusterId ? (fresh.generations?.[delivery.name] ?? 0) : 0;
      const credentials = new Map(record.current.map((c) => [c.item, c.data]));
      return { credentials, revision: delivery.revision + generation, issued: issuedHere.length > 0 };
    });
  }

  /**
   * Stores a record after a change; when credentials were replaced, the cluster's revision goes up first (its
   * bundles from now on hold only the new ones) and the replaced leases note that revision.
   */
  private async save(
    record: CredentialRecord,
    replaced: RetiredLease[],
    read: CredentialRead,
    issuedHere: HeldLease[],
  ): Promise<void> {
    if (replaced.length > 0) {
      const delivery = await this.store.delivery(record.delivery);
      const generation = await this.hooks.bumpGeneration(record.cluster, record.clusterId, record.delivery);
      const revision = (delivery?.revision ?? 0) + (generation ?? 0);
      for (const lease of replaced) lease.replacedBy = revision;
    }
    try {
      await this.store.putCredential(record, read);
    } catch (err) {
      // Another node changed the record since it was read here. What this attempt issued was never sealed into a
      // bundle nor recorded: it is revoked now, and the caller's retry starts again from the record as it is.
      if (isStorageConflict(err)) {
        for (const lease of issuedHere) await this.core.expiration.revoke(lease.leaseId).catch(() => undefined);
      }
      throw err;
    }
    if (this.running) {
      this.holders.add(record.cluster);
      this.arm(record);
    }
    if (replaced.length > 0) this.hooks.refan();
  }

  // ---- renewing and revoking (the node that runs background jobs) -----------------------------------------------

  /** Another node wrote this record: its timer follows what is stored now. */
  async refresh(cluster: string, delivery: string): Promise<void> {
    if (!this.running) return;
    const record = await this.store.credential(cluster, delivery);
    if (record) {
      this.holders.add(cluster);
      this.arm(record);
      // Issued by another node's fetch, which checked the placement through its own caches: checked here too, so
      // that one which raced a deregistration or an unplacing the other node had not heard of yet goes.
      this.reconcileSoon(cluster);
    } else this.disarm(key(cluster, delivery));
  }

  /**
   * A cluster's agent reported: replaced leases whose revision it shows applied can go. From another node, the
   * change may also be a relabelling, so its placements are checked too.
   */
  clusterChanged(cluster: string, remote: boolean): void {
    if (!this.running || !this.holders.has(cluster)) return;
    void this.tendCluster(cluster).catch(() => undefined);
    if (remote) this.reconcileSoon(cluster);
  }

  private async tendCluster(cluster: string): Promise<void> {
    for (const delivery of await this.store.credentialsOf(cluster)) await this.tend(cluster, delivery);
  }

  private arm(record: CredentialRecord): void {
    if (!this.running) return;
    const id = key(record.cluster, record.delivery);
    // After a failure, the current credentials are tried again at retryAt, not in a loop of attempts.
    const times = [
      ...record.current.map((c) => Math.max(Math.min(renewAt(c), reissueAt(c)), record.retryAt ?? 0)),
      ...record.retired.map((r) => (r.expireTime < r.revokeAt ? Math.min(renewAt(r), r.revokeAt) : r.revokeAt)),
    ];
    this.disarm(id);
    if (times.length === 0) return;
    const at = Math.min(...times);
    const delay = Math.max(0, at - Date.now());
    const timer = setTimeout(
      () => {
        this.timers.delete(id);
        if (delay > MAX_TIMER_MS) return this.arm(record);
        void this.tend(record.cluster, record.delivery).catch(() => undefined);
      },
      Math.min(delay, MAX_TIMER_MS),
    );
    timer.unref();
    this.timers.set(id, timer);
  }

  private disarm(id: string): void {
    const timer = this.timers.get(id);
    if (timer) clearTimeout(timer);
    this.timers.delete(id);
  }

  /** Does what is due for one record: revocations, renewals, re-issues. */
  private async tend(cluster: string, delivery: string): Promise<void> {
    if (!this.running) return;
    await this.exclusive(cluster, delivery, async () => {
      const read = await this.store.credentialRead(cluster, delivery);
      const record = read.record;
      if (!record || !this.running) return;
      const now = Date.now();
      const clusterRecord = await this.store.cluster(cluster);
      const reported = clusterRecord?.reports?.[delivery]?.revision ?? 0;
      const retired: RetiredLease[] = [];
      let changed = record.error !== undefined;
      for (const lease of record.retired) {
        if (
          (lease.replacedBy > 0 && reported >= lease.replacedBy) ||
          now >= lease.revokeAt ||
          now >= lease.expireTime
        ) {
          await this.revoke(lease);
          changed = true;
        } else {
          if (now >= renewAt(lease)) {
            changed = true;
            // Refused (revoked by hand, the role gone): no more attempts, it is let go at its expiry.
            await this.renew(lease).catch(() => (lease.revokeAt = Math.min(lease.revokeAt, lease.expireTime)));
          }
          retired.push(lease);
        }
      }
      record.retired = retired;
      const definition = await this.store.delivery(delivery);
      const grace = (definition?.gracePeriod ?? DEFAULT_GRACE_PERIOD) * 1000;
      const replaced: RetiredLease[] = [];
      const issuedHere: HeldLease[] = [];
      delete record.error;
      delete record.retryAt;
      for (const [index, lease] of record.current.entries()) {
        let replace = now >= reissueAt(lease);
        if (replace || now >= renewAt(lease)) changed = true;
        if (!replace && now >= renewAt(lease)) {
          replace = !(await this.renew(lease).then(
            () => true,
            () => false,
          ));
        }
        if (!replace) continue;
        try {
          const issued = await issueCredential(this.core, lease, { cluster, delivery });
          this.counts.replaced++;
          const made = toHeld(lease.item, lease, issued);
          record.current[index] = made;
          issuedHere.push(made);
          const old = retire(lease, 0, Math.min(now + grace, lease.maxExpireTime));
          record.retired.push(old);
          replaced.push(old);
        } catch (err) {
          record.error = `re-issuing the credential of item "${lease.item}" failed: ${message(err)}`;
          record.retryAt = now + RETRY_MS;
        }
      }
      if (changed) await this.save(record, replaced, read, issuedHere);
      else this.arm(record);
    });
  }

  /** Renews a lease by the TTL it was issued with, never past its max TTL (the expiration manager's rule). */
  private async renew(lease: HeldLease): Promise<void> {
    const renewed = await this.core.expiration.renew(lease.leaseId, Math.max(1, Math.round(lease.ttlMs / 1000)));
    lease.expireTime = renewed.expireTime;
    lease.maxExpireTime = renewed.maxExpireTime;
    this.counts.renewed++;
  }

  /** A failed revocation stays the expiration manager's, which retries it: the pipeline lets go either way. */
  private async revoke(lease: HeldLease): Promise<void> {
    this.counts.revoked++;
    await this.core.expiration.revoke(lease.leaseId).catch(() => undefined);
  }

  // ---- unplaced, deleted, deregistered --------------------------------------------------------------------------

  /**
   * Placements, deliveries or clusters changed: once the burst is over, every held credential (or those of the
   * named cluster) is checked against what is placed now.
   */
  reconcileSoon(cluster?: string): void {
    if (!this.running) return;
    const first = this.pending === undefined;
    this.pending ??= { all: false, clusters: new Set() };
    if (cluster === undefined) this.pending.all = true;
    else this.pending.clusters.add(cluster);
    if (!first) return;
    setImmediate(() => {
      const pending = this.pending;
      this.pending = undefined;
      if (pending && this.running) void this.reconcile(pending).catch(() => undefined);
    });
  }

  private async reconcile(scope: { all: boolean; clusters: Set<string> }): Promise<void> {
    const held = (await this.store.listCredentials()).filter((h) => scope.all || scope.clusters.has(h.cluster));
    if (held.length === 0) return; // no database source in use: nothing to read
    const state = await DesiredState.load(this.store, new Set(held.map((h) => h.cluster)));
    for (const { cluster, delivery } of held) {
      const record = state.clusters.get(cluster);
      const definition = state.deliveries.get(delivery);
      const placed =
        record !== undefined &&
        definition !== undefined &&
        state.selected(record).has(delivery) &&
        definition.items.some((item) => item.database);
      if (!placed) await this.revokeAll(cluster, delivery);
      else await this.retireDropped(record, delivery, definition);
    }
  }

  /**
   * Unplaced, deleted or deregistered (or registered anew under the same name, when `unless` is the new cluster's
   * id and the record is of an earlier one): every lease of the record is revoked now, and the record goes.
   */
  private async revokeAll(cluster: string, delivery: string, unless?: string, onlyOf?: string): Promise<void> {
    await this.exclusive(cluster, delivery, async () => {
      const read = await this.store.credentialRead(cluster, delivery);
      const record = read.record;
      if (!record || record.clusterId === unless || (onlyOf !== undefined && record.clusterId !== onlyOf)) return;
      for (const lease of [...record.current, ...record.retired]) await this.revoke(lease);
      // A cluster placed again later gets a new revision with new credentials, never one it may still hold.
      if (record.current.length > 0) await this.hooks.bumpGeneration(cluster, record.clusterId, delivery);
      // Another node's fetch may have issued meanwhile: then this runs again, and revokes that one too.
      await this.store.deleteCredential(cluster, delivery, read);
      this.disarm(key(cluster, delivery));
    });
  }

  /** Items the delivery no longer has (or whose source changed): their credentials are replaced, with grace. */
  private async retireDropped(
    cluster: { name: string; clusterId: string },
    delivery: string,
    definition: DeliveryDefinition,
  ): Promise<void> {
    await this.revokeAll(cluster.name, delivery, cluster.clusterId);
    await this.exclusive(cluster.name, delivery, async () => {
      const read = await this.store.credentialRead(cluster.name, delivery);
      const record = read.record;
      if (!record) return;
      const keep = (c: CurrentCredential): boolean =>
        definition.items.some((i) => i.name === c.item && i.database?.mount === c.mount && i.database.role === c.role);
      const dropped = record.current.filter((c) => !keep(c));
      if (dropped.length === 0) return;
      const now = Date.now();
      const grace = (definition.gracePeriod ?? DEFAULT_GRACE_PERIOD) * 1000;
      const current = await this.store.cluster(cluster.name);
      const delivered = await this.store.delivery(delivery);
      // The definition changed, so the delivery's revision did: the bundles from that revision on lack them.
      const revision = (delivered?.revision ?? 0) + (current?.generations?.[delivery] ?? 0);
      record.current = record.current.filter(keep);
      record.retired.push(...dropped.map((c) => retire(c, revision, Math.min(now + grace, c.maxExpireTime))));
      await this.store.putCredential(record, read);
      this.arm(record);
    });
  }
}
