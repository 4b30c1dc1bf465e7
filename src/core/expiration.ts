import { createHash, randomUUID } from 'node:crypto';
import type { InvalidationHandler } from './invalidation.js';
import type { LeaseContext, NewSecret, SecretType } from './backend.js';
import { retryOnConflict } from './conflict-retry.js';
import { badRequest, CofreError } from './errors.js';
import { StorageConflictError, type Storage, type StorageOp } from './storage.js';
import { TOKEN_LEASE_TYPE } from './token-leases.js';
import { getJson, jsonBytes, parseJson } from './storage-view.js';

/** Vault's system defaults: 32 days for both the default and the maximum lease TTL. */
export const SYSTEM_DEFAULT_TTL = 768 * 3600;
export const SYSTEM_MAX_TTL = 768 * 3600;

/** Failed revocations are retried after 1 s, 2 s, 4 s, … up to this, for as long as it takes. */
const MAX_RETRY_DELAY_MS = 5 * 60_000;
/** setTimeout's limit is about 24.8 days; a later expiry is re-armed when this fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/**
 * A revocation another node began and has not ended (nor recorded a failure of) in this long is taken over by the
 * leader: that node may have died between its mark and its end.
 */
const TAKE_OVER_MS = 60_000;
/** A revocation that failed before reaching the backend (the store refused its mark) is tried again after this. */
const CLAIM_RETRY_MS = 5_000;
/** Revocations run at most this many at once, so a restart after a long outage does not flood a database. */
const REVOKE_CONCURRENCY = 8;

/** A lease as persisted under sys/expire/id/<lease id>. Times are unix milliseconds. */
export interface LeaseEntry {
  leaseId: string;
  /** The mount's routing prefix when the lease was issued; the secret type is looked up through it. */
  mountPrefix: string;
  secretType: string;
  internal: Record<string, unknown>;
  /** Salted hash of the owning token ("" for none); revoking that token revokes the lease. */
  tokenHash: string;
  issueTime: number;
  expireTime: number;
  /** The lease can never be renewed past this. */
  maxExpireTime: number;
  lastRenewalTime: number;
  renewable: boolean;
  /** Revocation failures so far; the lease stays, and is retried, until one succeeds. */
  revokeAttempts: number;
  lastRevokeError: string;
  /**
   * When a node began to revoke it (unix ms), set with a check of the entry read before the backend is asked: a
   * renewal that read the entry before then cannot commit after it, so no caller is told "renewed" of a lease whose
   * revocation goes ahead.
   */
  revokingSince?: number;
}

/**
 * The durable mark that a mount is being (or was) disabled or moved away from a path, for every node: no lease may be
 * registered under the mount's prefix once it is committed (closeMount). Named by the mount's UUID, so that a mount
 * enabled again at the same path is not affected, and by the prefix, so that a mount moved back is not either.
 */
const closedKey = (mountId: string, prefix: string): string => `closed/${mountId}/${prefix}`;

/** What the registration of a lease under a mount being disabled or moved is refused with. */
function closingError(prefix: string): CofreError {
  return badRequest(`no new lease can be issued under "${prefix}": the mount is being disabled or moved`);
}

/** A lease as read from storage, with the bytes it was read from. */
interface StoredLease {
  entry: LeaseEntry;
  stored: Uint8Array;
}

/** How the manager finds the secret type of a lease: the mount may have been disabled or be mounted again. */
export type SecretTypeResolver = (
  mountPrefix: string,
  type: string,
) => { secretType: SecretType; storage: Storage } | undefined;

export interface ExpirationStats {
  leases: number;
  revoked: number;
  revokeFailures: number;
  /** Leases whose revocation failed and waits for a retry. */
  pendingRetries: number;
}

export interface LeaseLookup {
  id: string;
  issue_time: string;
  expire_time: string | null;
  /** Cofre's own: the latest the lease can be renewed to, so a holder can replace it in time (Vault has none). */
  max_expire_time: string | null;
  last_renewal: string | null;
  renewable: boolean;
  ttl: number;
  revoke_attempts: number;
  last_revoke_error: string;
}

/**
 * The expiration manager: every dynamic secret's lease, persisted through the barrier so it survives restarts,
 * and a timer per lease that revokes it through its backend when it ends. A revocation that fails stays on
 * record and is retried with back-off; it is never dropped. Timers run only while `start()`ed: on the one node
 * that runs background jobs.
 */
export class ExpirationManager {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly due: string[] = [];
  private readonly inFlight = new Map<string, { job: Promise<void>; onlyIfDue: boolean }>();
  private running = false;
  private workers = 0;
  private readonly stats = { revoked: 0, revokeFailures: 0 };
  private readonly retrying = new Set<string>();
  /** Mount prefixes being disabled, with how many unmounts of each are under way: no new lease goes under them. */
  private readonly closing = new Map<string, number>();
  /** Leases being stored by register(), each with its mount prefix: an unmount waits for those of its mount. */
  private readonly registering = new Map<Promise<void>, string>();

  /**
   * `fresh`: the same entries read past every cache, for the changes of a lease that another node may be making at
   * the same moment (a renewal here, a revocation there): they read what is stored and commit with a check of it.
   * `mountIdOf`: the UUID of the mount whose routing prefix is given, as this node sees it (undefined: none there).
   */
  constructor(
    private readonly storage: Storage,
    private readonly resolve: SecretTypeResolver,
    private readonly fresh: Storage = storage,
    private readonly mountIdOf: (prefix: string) => string | undefined = () => undefined,
  ) {}

  /** Loads every persisted lease and arms its timer; expired ones are revoked at once. */
  async start(): Promise<void> {
    this.running = true;
    for (const leaseId of await this.allLeaseIds('')) {
      const entry = await this.read(leaseId);
      if (entry) this.schedule(entry);
    }
  }

  /** Disarms every timer (on seal). Revocations already running finish. */
  stop(): void {
    this.running = false;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.due.length = 0;
    this.retrying.clear();
  }

  /** Re-reads every lease (another node changed more than it could name). */
  async reload(): Promise<void> {
    if (!this.running) return;
    this.stop();
    await this.start();
  }

  /**
   * Another node's changes, keys relative to this manager's view: each lease (`id/<lease id>`) changed is read
   * again, after the mounts whose engines revoke it were reloaded.
   */
  readonly invalidation: InvalidationHandler = {
    stage: 'leases',
    apply: async (keys) => {
      for (const key of keys) if (key.startsWith('id/')) await this.refresh(key.slice('id/'.length));
    },
    reload: () => this.reload(),
  };

  /** Another node registered, renewed or revoked this lease: arm or disarm its timer from what is stored now. */
  async refresh(leaseId: string): Promise<void> {
    if (!this.running) return;
    const entry = await this.read(leaseId);
    if (entry) this.schedule(entry);
    else this.disarm(leaseId);
  }

  /** Waits for revocations under way (tests and shutdown). */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight.values()].map((r) => r.job));
  }

  /**
   * Puts a new secret under a lease. `ttl` and `maxTtl` are already resolved (see resolveTtl). The lease may not
   * outlive its token: a token that expires takes its leases with it.
   */
  async register(opts: {
    mountPrefix: string;
    requestPath: string;
    secret: NewSecret;
    ttl: number;
    maxTtl: number;
    tokenHash: string;
    tokenExpireTime: number;
  }): Promise<LeaseEntry> {
    // Checked in the same synchronous step that records the registration (below): see closeMount. A mount that is
    // gone already (disabled or moved while the secret was made) revoked its leases before this one existed, and
    // nothing could revoke this one later.
    if (this.closing.has(opts.mountPrefix)) throw closingError(opts.mountPrefix);
    if (!this.resolve(opts.mountPrefix, opts.secret.type)) {
      throw badRequest(`no new lease can be issued under "${opts.mountPrefix}": no mount there revokes it any more`);
    }
    const now = Date.now();
    let maxExpireTime = now + opts.maxTtl * 1000;
    if (opts.tokenExpireTime > 0) maxExpireTime = Math.min(maxExpireTime, opts.tokenExpireTime);
    const entry: LeaseEntry = {
      leaseId: `${opts.mountPrefix}${opts.requestPath.replace(/\/+$/, '')}/${randomUUID()}`,
      mountPrefix: opts.mountPrefix,
      secretType: opts.secret.type,
      internal: opts.secret.internal,
      tokenHash: opts.tokenHash,
      issueTime: now,
      expireTime: Math.min(now + opts.ttl * 1000, maxExpireTime),
      maxExpireTime,
      lastRenewalTime: 0,
      renewable: opts.secret.renewable,
      revokeAttempts: 0,
      lastRevokeError: '',
    };
    const ops: StorageOp[] = [{ op: 'put', key: idKey(entry.leaseId), value: jsonBytes(entry) }];
    if (entry.tokenHash) ops.push({ op: 'put', key: tokenKey(entry), value: Buffer.from(entry.leaseId) });
    await this.registration(opts.mountPrefix, this.commitUnlessClosed(opts.mountPrefix, ops));
    this.schedule(entry);
    return entry;
  }

  /**
   * Commits a lease's first write, with the check that no node has marked its mount closed (closeMount): this node
   * may not have heard yet that another node is disabling or moving the mount, and the store's order decides. A
   * write committed before the mark is found by the revocation that follows the mark; one after it is refused.
   */
  private async commitUnlessClosed(prefix: string, ops: StorageOp[]): Promise<void> {
    const mountId = this.mountIdOf(prefix);
    if (mountId === undefined) {
      await this.storage.transaction(ops);
      return;
    }
    try {
      await this.storage.transaction([{ op: 'check', key: closedKey(mountId, prefix), value: null }, ...ops]);
    } catch (err) {
      if (err instanceof StorageConflictError) throw closingError(prefix);
      throw err;
    }
  }

  /**
   * A mount is being disabled or moved: from now on no lease may be registered under its prefix, on any node, and
   * those being stored here are waited for, so that the revokePrefix that follows sees every lease the mount will
   * ever have there. Other nodes learn of it through a mark in the store that each registration checks
   * (commitUnlessClosed): the unmount's own notification comes only after the revocations, and a node serving a
   * login meanwhile left a live token that nothing revoked. The request that is refused revokes its secret at once
   * (the request handler, or the token store, does so when registration fails).
   *
   * Returns what ends the closing once the unmount or move is done (`closed` true: the mark stays, for the nodes
   * that have not heard yet) or has failed and the mount stays where it was (the mark is removed).
   */
  async closeMount(prefix: string): Promise<(closed: boolean) => Promise<void>> {
    this.closing.set(prefix, (this.closing.get(prefix) ?? 0) + 1);
    let ended = false;
    const mountId = this.mountIdOf(prefix);
    const mark = mountId === undefined ? undefined : closedKey(mountId, prefix);
    // The mark lists the closings under way (on any node): one that fails takes only itself off, so that another
    // node's closing of the same mount, still under way, stays marked.
    const attempt = randomUUID();
    const end = async (closed: boolean): Promise<void> => {
      if (ended) return;
      ended = true;
      const left = (this.closing.get(prefix) ?? 1) - 1;
      if (left > 0) this.closing.set(prefix, left);
      else this.closing.delete(prefix);
      if (!closed && mark) await this.changeMark(mark, (attempts) => attempts.filter((a) => a !== attempt));
    };
    try {
      if (mark) await this.changeMark(mark, (attempts) => [...attempts, attempt]);
    } catch (err) {
      await end(true);
      throw err;
    }
    const underWay = [...this.registering].filter(([, p]) => p === prefix).map(([write]) => write);
    await Promise.all(underWay);
    return end;
  }

  /**
   * Changes the list of closings under way in a mount's mark, with a check of what was read (two nodes' closings at
   * once). No closing left: the mark goes. A mark that is not such a list (a node of an older version wrote the time)
   * stays as it is: the mount is closed.
   */
  private async changeMark(mark: string, change: (attempts: string[]) => string[]): Promise<void> {
    await retryOnConflict(
      async () => {
        const stored = (await this.storage.get(mark)) ?? null;
        let attempts: unknown = [];
        try {
          if (stored) attempts = parseJson<unknown>(stored);
        } catch {
          attempts = undefined;
        }
        if (!Array.isArray(attempts)) return;
        const next = change(attempts as string[]);
        await this.storage.transaction([
          { op: 'check', key: mark, value: stored },
          next.length > 0 ? { op: 'put', key: mark, value: jsonBytes(next) } : { op: 'delete', key: mark },
        ]);
      },
      () => new CofreError(409, 'the mount kept changing on other nodes while it was closed: try again'),
    );
  }

  /**
   * A mount is being moved to `prefix`, where it may have been before: a mark left by that earlier move away would
   * refuse its leases there.
   */
  async clearClosed(mountId: string, prefix: string): Promise<void> {
    await this.storage.delete(closedKey(mountId, prefix));
  }

  /** Awaits a lease's first write, known meanwhile as a registration under way for closeMount. */
  private async registration(mountPrefix: string, write: Promise<void>): Promise<void> {
    const settled = write.then(
      () => undefined,
      () => undefined,
    );
    this.registering.set(settled, mountPrefix);
    try {
      await write;
    } finally {
      this.registering.delete(settled);
    }
  }

  /** Stores a lease made by the core itself (a token's) as given, replacing any earlier one, and arms it. */
  async track(entry: LeaseEntry): Promise<void> {
    // The same gates as register(): a login racing the disabling of its auth mount leaves no token behind.
    if (this.closing.has(entry.mountPrefix)) throw closingError(entry.mountPrefix);
    const put: StorageOp = { op: 'put', key: idKey(entry.leaseId), value: jsonBytes(entry) };
    await this.registration(entry.mountPrefix, this.commitUnlessClosed(entry.mountPrefix, [put]));
    this.schedule(entry);
  }

  /**
   * A lease its owner moved (a token's renewal): as track(), but committed with a check of the lease as stored, and
   * refused when the lease is being revoked, so that a renewal racing the lease's end is answered with an error
   * rather than "renewed" for a token the leader is revoking.
   */
  async extend(entry: LeaseEntry): Promise<void> {
    await retryOnConflict(
      async () => {
        const read = await this.readStored(entry.leaseId);
        // Gone: revoked meanwhile (its token with it); writing it again would bring back a lease nothing holds.
        if (!read) throw badRequest('invalid lease: it was revoked');
        if (read.entry.revokingSince) throw badRequest('lease is being revoked');
        await this.fresh.transaction([
          { op: 'check', key: idKey(entry.leaseId), value: read.stored },
          { op: 'put', key: idKey(entry.leaseId), value: jsonBytes(entry) },
        ]);
      },
      () => new CofreError(409, 'the lease kept changing on other nodes while it was extended: try again'),
    );
    this.schedule(entry);
  }

  /** Forgets a lease without revoking anything: what it stood for is being revoked by its owner. */
  async drop(leaseId: string): Promise<void> {
    await this.forget(leaseId);
  }

  async lookup(leaseId: string): Promise<LeaseLookup> {
    const entry = await this.mustRead(leaseId);
    const now = Date.now();
    return {
      id: entry.leaseId,
      issue_time: new Date(entry.issueTime).toISOString(),
      expire_time: new Date(entry.expireTime).toISOString(),
      max_expire_time: entry.maxExpireTime ? new Date(entry.maxExpireTime).toISOString() : null,
      last_renewal: entry.lastRenewalTime ? new Date(entry.lastRenewalTime).toISOString() : null,
      renewable: entry.renewable && entry.revokeAttempts === 0 && !entry.revokingSince,
      ttl: Math.max(0, Math.round((entry.expireTime - now) / 1000)),
      revoke_attempts: entry.revokeAttempts,
      last_revoke_error: entry.lastRevokeError,
    };
  }

  /** Extends a lease by `increment` seconds from now (0: its original TTL), never past its max TTL. */
  async renew(leaseId: string, increment: number): Promise<LeaseEntry> {
    // Committed with a check of the entry it read: a renewal must not write back a lease that another node revoked
    // (or renewed) meanwhile. Tried again from the stored entry when it did, which then answers "invalid lease".
    return retryOnConflict(
      async () => {
        const { entry, stored } = await this.mustReadStored(leaseId);
        // As Vault: a token is renewed through auth/token/renew*, which applies the token's own limits.
        if (entry.secretType === TOKEN_LEASE_TYPE) throw badRequest('tokens cannot be renewed through this endpoint');
        const target = this.resolve(entry.mountPrefix, entry.secretType);
        if (!entry.renewable || !target?.secretType.renew || entry.revokeAttempts > 0 || entry.revokingSince) {
          throw badRequest('lease is not renewable');
        }
        const now = Date.now();
        if (entry.expireTime <= now) throw badRequest('lease expired');
        const ttlMs = increment > 0 ? increment * 1000 : entry.expireTime - (entry.lastRenewalTime || entry.issueTime);
        const renewed = { ...entry, expireTime: Math.min(now + ttlMs, entry.maxExpireTime), lastRenewalTime: now };
        try {
          await target.secretType.renew(this.context(renewed, target.storage));
        } catch (err) {
          // Revoked meanwhile by another node, whose revocation took what the renewal changes (a dropped user).
          if (!(await this.readStored(leaseId))) throw badRequest('invalid lease');
          throw err;
        }
        await this.fresh.transaction([
          { op: 'check', key: idKey(leaseId), value: stored },
          { op: 'put', key: idKey(leaseId), value: jsonBytes(renewed) },
        ]);
        this.schedule(renewed);
        return renewed;
      },
      () => new CofreError(409, 'the lease kept changing on other nodes while it was renewed: try again'),
    );
  }

  /** Revokes through the backend, then forgets the lease. A failure is kept for retry and thrown. */
  async revoke(leaseId: string): Promise<void> {
    return this.revokeOnce(leaseId, false);
  }

  /**
   * One revocation of a lease at a time on this node; `onlyIfDue` (its timer fired) revokes only a lease that has
   * ended by what the store holds now. A caller that asks for a revocation while one that may find the lease not
   * due runs waits for it, then asks again.
   */
  private revokeOnce(leaseId: string, onlyIfDue: boolean): Promise<void> {
    const running = this.inFlight.get(leaseId);
    if (running && (onlyIfDue || !running.onlyIfDue)) return running.job;
    const job = (running ? running.job.catch(() => undefined) : Promise.resolve())
      .then(() => this.revokeNow(leaseId, onlyIfDue))
      .finally(() => {
        if (this.inFlight.get(leaseId)?.job === job) this.inFlight.delete(leaseId);
      });
    this.inFlight.set(leaseId, { job, onlyIfDue });
    return job;
  }

  /**
   * Revokes every lease whose id starts with prefix, several at a time. Leases that fail stay on record and are
   * retried; the error says how many.
   */
  async revokePrefix(prefix: string, force = false): Promise<number> {
    const ids = await this.allLeaseIds(prefix);
    const failures: unknown[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let id = ids[next++]; id !== undefined; id = ids[next++]) {
        // Force, as Vault's revoke-force: the revocation is still tried (a token goes with its lease); only its
        // failure is ignored and the lease forgotten.
        const revoked = force ? this.revoke(id).catch(() => this.forget(id)) : this.revoke(id);
        await revoked.catch((err: unknown) => failures.push(err));
      }
    };
    await Promise.all(Array.from({ length: Math.min(REVOKE_CONCURRENCY, ids.length) }, worker));
    if (failures.length > 0) {
      throw badRequest(
        `${failures.length} of ${ids.length} leases under "${prefix}" could not be revoked and will be retried; ` +
          `first error: ${messageOf(failures[0])}`,
      );
    }
    return ids.length;
  }

  /** Revokes the leases a token owns (when the token is revoked). Failures are retried in the background. */
  async revokeByToken(tokenHash: string): Promise<void> {
    const keys = await this.storage.list(`token/${tokenHash}/`);
    for (const key of keys) {
      const leaseId = Buffer.from((await this.storage.get(`token/${tokenHash}/${key}`)) ?? []).toString('utf8');
      await this.revoke(leaseId).catch(() => {
        // Kept on record with its error and retried; the token's revocation goes ahead.
      });
    }
  }

  /** The hashes of the tokens that own leases (auth/token/tidy looks for owners that no longer exist). */
  async leaseOwners(): Promise<string[]> {
    return (await this.storage.list('token/')).map((key) => key.replace(/\/$/, ''));
  }

  /** Lease ids under a prefix, as sys/leases/lookup/<prefix> lists them: one level. */
  async listPrefix(prefix: string): Promise<string[]> {
    return this.storage.list(`id/${prefix}`);
  }

  /** Removes index entries whose lease is gone (sys/leases/tidy). */
  async tidy(): Promise<number> {
    let removed = 0;
    for (const token of await this.storage.list('token/')) {
      for (const key of await this.storage.list(`token/${token}`)) {
        const leaseId = Buffer.from((await this.storage.get(`token/${token}${key}`)) ?? []).toString('utf8');
        if (!(await this.read(leaseId))) {
          await this.storage.delete(`token/${token}${key}`);
          removed++;
        }
      }
    }
    return removed;
  }

  snapshot(): ExpirationStats {
    return { leases: this.timers.size, ...this.stats, pendingRetries: this.retrying.size };
  }

  private async revokeNow(leaseId: string, onlyIfDue: boolean): Promise<void> {
    let read: StoredLease | undefined;
    try {
      read = await this.claim(leaseId, onlyIfDue);
    } catch (err) {
      // Not recorded on the lease (the store refused the mark): its timer is armed again here.
      if (this.running) this.arm(leaseId, Date.now() + CLAIM_RETRY_MS);
      throw err;
    }
    if (!read) return;
    const { entry } = read;
    const target = this.resolve(entry.mountPrefix, entry.secretType);
    try {
      if (!target) throw new Error(`no secrets engine of the lease is mounted at "${entry.mountPrefix}"`);
      await target.secretType.revoke(this.context(entry, target.storage));
    } catch (err) {
      await this.recordFailure(read, err);
      throw badRequest(`failed to revoke lease "${leaseId}": ${messageOf(err)}`);
    }
    await this.forget(leaseId, entry);
    this.stats.revoked++;
  }

  /**
   * The lease as stored now, marked as being revoked (with a check of what was read, so that a renewal committed
   * meanwhile is read again); undefined when it is gone or, for `onlyIfDue`, has not ended: renewed on another
   * node, whose notification this node may not have had yet (the cache that timed it may be stale), it is armed
   * again for its new end.
   */
  private claim(leaseId: string, onlyIfDue: boolean): Promise<StoredLease | undefined> {
    return retryOnConflict(
      async () => {
        const read = await this.readStored(leaseId);
        if (!read) {
          this.disarm(leaseId);
          return undefined;
        }
        const { entry, stored } = read;
        const now = Date.now();
        if (onlyIfDue && entry.revokeAttempts === 0) {
          // Another node's revocation under way: its end (or its failure, recorded on the lease) is heard; taken
          // over only when it has been silent for long, as from a node that died.
          const takeOver = entry.revokingSince === undefined ? undefined : entry.revokingSince + TAKE_OVER_MS;
          const dueAt = takeOver ?? entry.expireTime;
          if (dueAt > now) {
            if (this.running) this.arm(leaseId, dueAt);
            return undefined;
          }
        }
        if (entry.revokingSince) return read;
        const claimed: LeaseEntry = { ...entry, revokingSince: now };
        const bytes = jsonBytes(claimed);
        await this.fresh.transaction([
          { op: 'check', key: idKey(leaseId), value: stored },
          { op: 'put', key: idKey(leaseId), value: bytes },
        ]);
        return { entry: claimed, stored: bytes };
      },
      () => new CofreError(409, `the lease "${leaseId}" kept changing on other nodes while it was revoked: try again`),
    );
  }

  private async recordFailure({ entry, stored }: StoredLease, err: unknown): Promise<void> {
    this.stats.revokeFailures++;
    const attempts = entry.revokeAttempts + 1;
    const failed = { ...entry, revokeAttempts: attempts, lastRevokeError: messageOf(err) };
    // Only onto the entry the revocation read: one that another node revoked meanwhile stays gone.
    const ops: StorageOp[] = [
      { op: 'check', key: idKey(entry.leaseId), value: stored },
      { op: 'put', key: idKey(entry.leaseId), value: jsonBytes(failed) },
    ];
    await this.fresh.transaction(ops).catch(() => undefined);
    if (!this.running) return;
    this.retrying.add(entry.leaseId);
    const delay = Math.min(1000 * 2 ** (attempts - 1), MAX_RETRY_DELAY_MS);
    this.arm(entry.leaseId, Date.now() + delay);
  }

  /** Deletes a lease and its token index entry without calling the backend (revoke-force, and after revoke). */
  private async forget(leaseId: string, known?: LeaseEntry): Promise<void> {
    const entry = known ?? (await this.read(leaseId));
    const ops: StorageOp[] = [{ op: 'delete', key: idKey(leaseId) }];
    if (entry?.tokenHash) ops.push({ op: 'delete', key: tokenKey(entry) });
    await this.storage.transaction(ops);
    this.disarm(leaseId);
  }

  private schedule(entry: LeaseEntry): void {
    if (!this.running) return;
    if (entry.revokeAttempts > 0) this.retrying.add(entry.leaseId);
    // A lease another node is revoking: looked at again once that node may have died without a word.
    const takeOver = entry.revokingSince && entry.revokeAttempts === 0 ? entry.revokingSince + TAKE_OVER_MS : undefined;
    this.arm(entry.leaseId, takeOver ?? entry.expireTime);
  }

  private arm(leaseId: string, at: number): void {
    const existing = this.timers.get(leaseId);
    if (existing) clearTimeout(existing);
    const delay = Math.max(0, at - Date.now());
    const timer = setTimeout(
      () => (delay > MAX_TIMER_MS ? this.arm(leaseId, at) : this.enqueue(leaseId)),
      Math.min(delay, MAX_TIMER_MS),
    );
    timer.unref();
    this.timers.set(leaseId, timer);
  }

  private disarm(leaseId: string): void {
    const timer = this.timers.get(leaseId);
    if (timer) clearTimeout(timer);
    this.timers.delete(leaseId);
    this.retrying.delete(leaseId);
  }

  private enqueue(leaseId: string): void {
    this.due.push(leaseId);
    while (this.workers < REVOKE_CONCURRENCY && this.due.length > 0) {
      this.workers++;
      void this.work().finally(() => this.workers--);
    }
  }

  private async work(): Promise<void> {
    for (let id = this.due.shift(); id !== undefined && this.running; id = this.due.shift()) {
      const entry = await this.read(id).catch(() => undefined);
      if (!entry) continue;
      // Not due yet by the wall clock: renewed since the timer was armed, or the timer (monotonic) fired before the
      // expiry by Date.now() (the wall clock stepped back, or one of Node's timers that fire a millisecond early).
      // Armed again for the expiry as stored, never left without a timer.
      if (entry.expireTime > Date.now() && entry.revokeAttempts === 0 && !entry.revokingSince) {
        this.arm(id, entry.expireTime);
        continue;
      }
      // Decided again on what the store holds: this node's copy may predate a renewal on another node.
      await this.revokeOnce(id, true).catch(() => undefined); // recorded and re-armed by recordFailure
    }
  }

  private context(entry: LeaseEntry, storage: Storage): LeaseContext {
    return { leaseId: entry.leaseId, internal: entry.internal, storage, expireTime: new Date(entry.expireTime) };
  }

  private read(leaseId: string): Promise<LeaseEntry | undefined> {
    return getJson<LeaseEntry>(this.storage, idKey(leaseId));
  }

  /** The lease as stored now, past every cache, with the bytes it was read from (what a change of it checks). */
  private async readStored(leaseId: string): Promise<StoredLease | undefined> {
    const stored = await this.fresh.get(idKey(leaseId));
    return stored === undefined ? undefined : { entry: parseJson<LeaseEntry>(stored), stored };
  }

  private async mustReadStored(leaseId: string): Promise<StoredLease> {
    const read = await this.readStored(givenLeaseId(leaseId));
    if (!read) throw badRequest('invalid lease');
    return read;
  }

  private async mustRead(leaseId: string): Promise<LeaseEntry> {
    const entry = await this.read(givenLeaseId(leaseId));
    if (!entry) throw badRequest('invalid lease');
    return entry;
  }

  private async allLeaseIds(prefix: string): Promise<string[]> {
    // A prefix names a folder ("database/creds/") or a single lease id; both are collected.
    const folder = prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
    const out: string[] = (await this.read(prefix.replace(/\/$/, ''))) ? [prefix.replace(/\/$/, '')] : [];
    const walk = async (p: string): Promise<void> => {
      for (const key of await this.storage.list(`id/${p}`)) {
        if (key.endsWith('/')) await walk(p + key);
        else out.push(p + key);
      }
    };
    await walk(folder);
    return out;
  }
}

/** The lease ID a caller named, refused when missing. */
function givenLeaseId(leaseId: string): string {
  if (typeof leaseId !== 'string' || leaseId === '') throw badRequest('missing lease ID');
  return leaseId;
}

/**
 * Vault's TTL rules: the secret's own TTL, else the mount's default, else the system's; capped by the secret's
 * max TTL, the mount's max and the system's max.
 */
export function resolveTtl(
  secret: { ttl: number; maxTtl: number },
  mount: { default_lease_ttl: number; max_lease_ttl: number },
): { ttl: number; maxTtl: number } {
  const mountMax = mount.max_lease_ttl || SYSTEM_MAX_TTL;
  const maxTtl = secret.maxTtl > 0 ? Math.min(secret.maxTtl, mountMax) : mountMax;
  const ttl = secret.ttl || mount.default_lease_ttl || SYSTEM_DEFAULT_TTL;
  return { ttl: Math.min(ttl, maxTtl), maxTtl };
}

function idKey(leaseId: string): string {
  return `id/${leaseId}`;
}

/** Token index keys hash the lease id: it holds slashes, and the index only needs to find it again. */
function tokenKey(entry: LeaseEntry): string {
  return `token/${entry.tokenHash}/${createHash('sha256').update(entry.leaseId).digest('hex')}`;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
