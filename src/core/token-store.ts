import { createHmac, randomBytes } from 'node:crypto';
import type { InvalidationHandler } from './invalidation.js';
import {
  type BatchContext,
  type BatchIssuing,
  isBatchToken,
  issueBatchToken,
  lookupBatchToken,
} from './batch-tokens.js';
import { retryOnConflict } from './conflict-retry.js';
import { createOnce } from './create-once.js';
import { badRequest, CofreError, permissionDenied } from './errors.js';
import { KeyLocks } from './key-locks.js';
import { isStorageConflict, type Storage, type StorageOp } from './storage.js';
import { getJson, jsonBytes, parseJson } from './storage-view.js';

/** What a change of a stored token entry writes (nothing when `entry` is absent) and answers. */
interface ChangeOutcome<T> {
  entry?: TokenEntry;
  result: T;
}

/** What the store keeps of a token. The token string itself is never stored: entries are keyed by its salted hash. */
export interface TokenEntry {
  /** Salted hash of the token: the storage key, never the token. */
  hash: string;
  accessor: string;
  parentHash: string; // "" for orphans
  policies: string[];
  meta: Record<string, string>;
  displayName: string;
  /** 0 = unlimited; LAST_USE_TAKEN or REVOCATION_PENDING: the token answers nothing more. */
  numUses: number;
  creationTime: number; // unix seconds
  creationTtl: number; // seconds, 0 = never expires
  explicitMaxTtl: number;
  period: number;
  renewable: boolean;
  expireTime: number; // unix ms, 0 = never
  path: string;
  /** The token is refused from client addresses outside these CIDR blocks. */
  boundCidrs?: string[];
  /** What the auth method that issued it needs on a renewal (LoginAuth.internal); never shown. */
  internal?: Record<string, unknown>;
  /** Only batch tokens say so (they are never stored: see batch-tokens.ts); every stored entry is a service token. */
  type?: 'batch';
  /** The token role it was created against (auth/token/create/:role_name). */
  role?: string;
}

/** The request that takes a token's last use still runs; the token is revoked once it is done. */
export const LAST_USE_TAKEN = -1;
/** Written before a revocation touches anything else, so every node refuses the token and new children of it. */
export const REVOCATION_PENDING = -2;

export interface NewToken {
  policies: string[];
  meta?: Record<string, string>;
  displayName: string;
  numUses?: number;
  ttl: number;
  explicitMaxTtl?: number;
  period?: number;
  renewable?: boolean;
  parentHash: string;
  path: string;
  /** Only for dev mode's chosen root token id. */
  id?: string;
  boundCidrs?: string[];
  internal?: Record<string, unknown>;
  role?: string;
}

/** What the core does around a token's life: a token with an expiry is a lease of the expiration manager. */
export interface TokenLifecycle {
  /**
   * A token with an expiry was created or (`renewal`) renewed: its lease follows it (and revokes it on time). A
   * renewal is refused when the lease is being revoked.
   */
  expires(entry: TokenEntry, renewal?: boolean): Promise<void>;
  /** Runs before a token is deleted: the leases it owns, and its own, go first, as in Vault. */
  revoking(entry: TokenEntry): Promise<void>;
}

const TOKEN_PREFIX = 'cvs.';
const SALT_KEY = 'salt';
const MAX_CACHE = 100_000;
const MAX_HASH_MEMO = 10_000;
/** No token this server issues comes near this; longer strings are refused before they cost an HMAC. */
export const MAX_TOKEN_LENGTH = 1024;
/** Hashes revoked on this node, kept so that no read that was in flight during a revocation can serve them. */
const MAX_REVOKED = 100_000;

/**
 * The token store, on its own barrier view. Tokens are looked up by HMAC-SHA256(salt, token); accessors the same
 * way. Children are indexed under their parent so revoking a parent finds them without a scan.
 *
 * Concurrency, which is where tokens are attacked:
 * - every change of one token's entry (a use, a renewal, the start of its revocation) runs under that token's
 *   lock, so a use count cannot be taken twice and a renewal cannot write back a token being revoked;
 * - a revocation first marks the token REVOCATION_PENDING (in memory at once, then in storage), then revokes its
 *   children until none are left, then deletes it; a child whose creation committed while its parent was being
 *   revoked sees the mark in a read that bypasses every cache, and revokes itself;
 * - lookups cache only what they read while no change was announced, never a token revoked here, and only an
 *   entry whose accessor index still names it (an entry written back after its deletion is not a token).
 */
export class TokenStore {
  private salt: Buffer = Buffer.alloc(0);
  private readonly cache = new Map<string, TokenEntry>();
  /** token → hash for recently used valid tokens: the HMAC is a fixed cost on every request otherwise. */
  private readonly hashMemo = new Map<string, string>();
  private readonly locks = new KeyLocks();
  private readonly revoked = new Set<string>();
  /** Bumped whenever a cached entry may have gone stale; a read that spans a bump is not cached. */
  private epoch = 0;
  /** Who holds a long stream on a token (watch): told when its entry may have changed or gone. */
  private readonly watchers = new Map<string, Set<() => void>>();

  constructor(
    private readonly storage: Storage,
    /** The same entries without any read cache, for checks that must see another node's latest commit. */
    private readonly fresh: Storage,
    private readonly lifecycle: TokenLifecycle,
    /** Seals batch tokens (the barrier's keyring); without it none is issued or accepted. */
    private readonly batchIssuing?: BatchIssuing,
  ) {}

  /** Forgets every cached entry and token (on seal, and before loading). */
  clear(): void {
    this.cache.clear();
    this.hashMemo.clear();
    this.revoked.clear();
    this.epoch++;
    for (const set of [...this.watchers.values()]) for (const changed of [...set]) changed();
  }

  /** Drops one cached entry: another node changed or revoked it. */
  forget(hash: string): void {
    this.cache.delete(hash);
    this.epoch++;
    this.tell(hash);
  }

  /**
   * Calls `changed` whenever the token's entry may have changed or gone: revoked here or on another node (or
   * server thread), changed there, or every token forgotten (a seal). Streams that outlive their request look
   * their caller's token up again then (whenCallerTokenGone), and so end as the revocation is made rather than at
   * their next event. `changed` must not throw. Returns what stops the watch.
   */
  watch(hash: string, changed: () => void): () => void {
    let set = this.watchers.get(hash);
    if (!set) this.watchers.set(hash, (set = new Set()));
    set.add(changed);
    return () => {
      set.delete(changed);
      if (set.size === 0 && this.watchers.get(hash) === set) this.watchers.delete(hash);
    };
  }

  private tell(hash: string): void {
    const set = this.watchers.get(hash);
    if (set) for (const changed of [...set]) changed();
  }

  /** Another node's changes, keys relative to this store's view: only token entries (`id/<hash>`) are cached. */
  readonly invalidation: InvalidationHandler = {
    drop: (key) => {
      if (key.startsWith('id/')) this.forget(key.slice('id/'.length));
    },
    dropAll: () => this.clear(),
  };

  async load(): Promise<void> {
    this.clear();
    this.salt = Buffer.from(await createOnce(this.storage, SALT_KEY, () => randomBytes(32)));
  }

  hashOf(secret: string): string {
    return createHmac('sha256', this.salt).update(secret).digest('hex');
  }

  async create(spec: NewToken): Promise<{ token: string; entry: TokenEntry }> {
    if (spec.id !== undefined && spec.id.length > MAX_TOKEN_LENGTH) {
      throw badRequest(`token id must be at most ${MAX_TOKEN_LENGTH} characters`);
    }
    // Such an id would be read as a batch token and never found.
    if (spec.id !== undefined && isBatchToken(spec.id))
      throw badRequest("custom token ID cannot have the 'cvb.' prefix");
    const token = spec.id ?? TOKEN_PREFIX + randomBytes(24).toString('base64url');
    const hash = this.hashOf(token);
    // A chosen id is made only if its entry is still what was read here when the token commits: two nodes given one
    // id at once would each have made the token, the second over the first, whose accessor and child index would
    // then name the other's token.
    const chosen = spec.id === undefined ? undefined : ((await this.storage.get(`id/${hash}`)) ?? null);
    if (spec.id !== undefined && (await this.lookupByHash(hash))) throw badRequest('token already exists');
    const now = Date.now();
    let ttl = spec.period ? spec.period : spec.ttl;
    // As Vault: the explicit max TTL limits even a periodic token's first TTL (its renewals are capped in renew).
    const explicitMax = spec.explicitMaxTtl ?? 0;
    if (explicitMax > 0 && (ttl === 0 || ttl > explicitMax)) ttl = explicitMax;
    let expireTime = ttl > 0 ? now + ttl * 1000 : 0;
    if (spec.parentHash) {
      // A child never outlives its parent: its expiry is capped by the parent's.
      const parent = await this.lookupByHash(spec.parentHash);
      if (!parent) {
        // Its last use may be the very request asking: the child would be revoked with it as the request ends.
        const lastUse = (await this.current(spec.parentHash))?.numUses === LAST_USE_TAKEN;
        throw permissionDenied(
          lastUse
            ? 'permission denied: this request takes the last use of the parent token, which a child could not outlive'
            : 'permission denied: the parent token is not valid',
        );
      }
      if (parent.expireTime > 0 && (expireTime === 0 || expireTime > parent.expireTime)) {
        expireTime = parent.expireTime;
        ttl = Math.max(1, Math.floor((expireTime - now) / 1000));
      }
    }
    const entry: TokenEntry = {
      hash,
      // Hex, like Vault's alphanumeric accessors: a leading '-' would read as a CLI flag.
      accessor: randomBytes(16).toString('hex'),
      parentHash: spec.parentHash,
      policies: [...new Set(spec.policies)].sort(),
      meta: spec.meta ?? {},
      displayName: spec.displayName,
      numUses: spec.numUses ?? 0,
      creationTime: Math.floor(now / 1000),
      creationTtl: ttl,
      explicitMaxTtl: spec.explicitMaxTtl ?? 0,
      period: spec.period ?? 0,
      renewable: spec.renewable ?? true,
      expireTime,
      path: spec.path,
      ...(spec.boundCidrs && spec.boundCidrs.length > 0 ? { boundCidrs: spec.boundCidrs } : {}),
      ...(spec.internal ? { internal: spec.internal } : {}),
      ...(spec.role ? { role: spec.role } : {}),
    };
    const ops: StorageOp[] = [
      ...(chosen === undefined ? [] : [{ op: 'check' as const, key: `id/${hash}`, value: chosen }]),
      { op: 'put', key: `id/${hash}`, value: jsonBytes(entry) },
      { op: 'put', key: `accessor/${this.hashOf(entry.accessor)}`, value: Buffer.from(hash) },
    ];
    if (entry.parentHash) ops.push({ op: 'put', key: `parent/${entry.parentHash}/${hash}`, value: Buffer.alloc(0) });
    this.revoked.delete(hash); // a chosen id may name a token revoked before
    await this.storage.transaction(ops).catch((err: unknown) => {
      throw isStorageConflict(err) ? badRequest('token already exists') : err;
    });
    this.remember(entry);
    try {
      if (entry.parentHash && !(await this.parentStillLive(entry.parentHash))) {
        throw permissionDenied('permission denied: the parent token was revoked');
      }
      if (entry.expireTime > 0) await this.lifecycle.expires(entry);
    } catch (err) {
      await this.revokeTree(hash);
      throw err;
    }
    return { token, entry };
  }

  /** Issues a batch token (not stored): the spec's TTL must be resolved, and its parent live. */
  async createBatch(spec: NewToken): Promise<{ token: string; entry: TokenEntry }> {
    const ctx = this.batchContext();
    if (!ctx) throw badRequest('batch tokens are not available');
    return issueBatchToken(ctx, spec);
  }

  /** The live entry for a token string, or undefined for unknown, expired, used-up or revoked tokens. */
  async lookup(token: string): Promise<TokenEntry | undefined> {
    if (typeof token === 'string' && isBatchToken(token)) {
      const ctx = this.batchContext();
      return ctx ? lookupBatchToken(ctx, token) : undefined;
    }
    if (typeof token !== 'string' || token === '' || token.length > MAX_TOKEN_LENGTH) return undefined;
    const memo = this.hashMemo.get(token);
    const hash = memo ?? this.hashOf(token);
    const entry = await this.lookupByHash(hash);
    // Only tokens that turned out valid are remembered: junk strings must not grow the memory of the server.
    if (entry && memo === undefined) {
      if (this.hashMemo.size >= MAX_HASH_MEMO) this.hashMemo.delete(this.hashMemo.keys().next().value!);
      this.hashMemo.set(token, hash);
    } else if (!entry && memo !== undefined) this.hashMemo.delete(token);
    return entry;
  }

  async lookupByHash(hash: string): Promise<TokenEntry | undefined> {
    const entry = await this.current(hash);
    if (!entry || entry.numUses < 0) return undefined;
    if (entry.expireTime !== 0 && entry.expireTime <= Date.now()) {
      // Its lease revokes it on time on the leader; this is the backstop for the moment before, or a follower.
      await this.revokeTree(entry.hash);
      return undefined;
    }
    return entry;
  }

  async lookupAccessor(accessor: string): Promise<TokenEntry | undefined> {
    if (typeof accessor !== 'string' || accessor === '' || accessor.length > MAX_TOKEN_LENGTH) return undefined;
    const hash = await this.storage.get(`accessor/${this.hashOf(accessor)}`);
    return hash ? this.lookupByHash(Buffer.from(hash).toString('utf8')) : undefined;
  }

  /**
   * Counts one use of a limited-use token, from its latest stored entry, so concurrent requests cannot both take
   * the same use, on this node (the token's lock) or on others (changeStored). Throws when no use is left. Returns
   * true when this was the last use: the caller revokes the token once its request is done (the request itself
   * may still need the entry).
   */
  async use(entry: TokenEntry): Promise<boolean> {
    if (entry.numUses === 0) return false; // unlimited tokens never become limited
    return this.locks.run(entry.hash, () =>
      this.changeStored(entry.hash, (current) => {
        if (!current || current.numUses < 0) throw permissionDenied('permission denied: invalid or expired token');
        const next = { ...current, numUses: current.numUses === 1 ? LAST_USE_TAKEN : current.numUses - 1 };
        return { entry: next, result: next.numUses === LAST_USE_TAKEN };
      }),
    );
  }

  /**
   * Renews as Vault does: the increment (or the original TTL) from now, capped by the explicit max TTL, the
   * mount's max TTL and the parent's expiry. `ttl` is what was granted, in whole seconds rounded down from the
   * renewal's own instant: a holder is never told its token lasts longer than it does, and an uncapped renewal
   * reports exactly what was asked (holders take less as "capped": log in again).
   */
  async renew(entry: TokenEntry, increment: number, maxTtl: number): Promise<{ entry: TokenEntry; ttl: number }> {
    return this.locks.run(entry.hash, async () => {
      let ttlMs = 0;
      // From the stored entry, checked at commit: a renewal must not write back a use another node took meanwhile.
      const { renewed, changed } = await this.changeStored(entry.hash, async (current) => {
        if (!current || current.numUses === REVOCATION_PENDING) throw badRequest('invalid token');
        if (!current.renewable) throw badRequest('invalid lease ID: lease is not renewable');
        // A token without TTL never expires: nothing to extend.
        if (current.creationTtl === 0) return { result: { renewed: current, changed: false } };
        const now = Date.now();
        let ttl = current.period || increment || current.creationTtl;
        if (maxTtl > 0 && !current.period) ttl = Math.min(ttl, maxTtl);
        let expireTime = now + ttl * 1000;
        // As Vault's CalculateTTL: a token that is not periodic lives at most its max TTL from its creation, however
        // often it is renewed (before, each renewal allowed another max TTL from then, so it never had to end).
        if (maxTtl > 0 && !current.period) expireTime = Math.min(expireTime, (current.creationTime + maxTtl) * 1000);
        if (current.explicitMaxTtl > 0) {
          expireTime = Math.min(expireTime, (current.creationTime + current.explicitMaxTtl) * 1000);
        }
        const parent = current.parentHash ? await this.current(current.parentHash) : undefined;
        if (parent && parent.expireTime > 0) expireTime = Math.min(expireTime, parent.expireTime);
        // Its max TTL (counted from a creation time in whole seconds) or its parent's expiry already passed.
        if (expireTime <= now) throw badRequest('past the max TTL, cannot renew');
        const next = { ...current, expireTime };
        ttlMs = expireTime - now;
        return { entry: next, result: { renewed: next, changed: true } };
      });
      if (changed) await this.lifecycle.expires(renewed, true);
      return { entry: renewed, ttl: Math.floor(ttlMs / 1000) };
    });
  }

  /**
   * Revokes a token and, recursively, every token created under it. The token is refused from the first step;
   * children are revoked until none is left, so one created during the revocation does not survive it.
   */
  async revokeTree(hash: string): Promise<void> {
    const entry = await this.markRevoking(hash);
    await this.drainChildren(hash, (child) => this.revokeTree(child));
    await this.revokeOne(hash, entry);
  }

  /** Revokes only this token; its children become orphans. */
  async revokeOrphan(hash: string): Promise<void> {
    const entry = await this.markRevoking(hash);
    await this.drainChildren(hash, (child) =>
      this.locks.run(child, () => this.changeStored(child, (current) => orphaned(current, undefined))),
    );
    await this.revokeOne(hash, entry);
  }

  /** Accessors of every live token, for auth/token/accessors. */
  async accessors(): Promise<string[]> {
    const out: string[] = [];
    for (const hash of await this.storage.list('id/')) {
      const entry = await this.lookupByHash(hash);
      if (entry) out.push(entry.accessor);
    }
    return out;
  }

  /**
   * Revokes, with their children, the stored tokens whose creation path is `prefix` or under it (as a lease ID
   * prefix: "auth/token/create" covers auth/token/create/<role>, not auth/token/create-orphan). Tokens with an
   * expiry are leases and go with sys/leases/revoke-prefix already; this finds the ones without. Returns how many.
   */
  async revokeByPath(prefix: string): Promise<number> {
    const under = prefix.replace(/\/+$/, '') + '/';
    let revoked = 0;
    for (const hash of await this.storage.list('id/')) {
      const entry = await this.current(hash);
      if (entry && `${entry.path.replace(/\/+$/, '')}/`.startsWith(under)) {
        await this.revokeTree(hash);
        revoked++;
      }
    }
    return revoked;
  }

  /**
   * auth/token/tidy: repairs what an interrupted write or revocation can leave behind. An accessor index naming no
   * entry, a child index naming no entry, an entry without its accessor index (written back after its deletion),
   * a revocation left pending, an expired token: each is finished or removed. A child whose parent is gone becomes
   * an orphan, as in Vault.
   */
  async tidy(): Promise<{ accessors: number; children: number; entries: number; revocations: number }> {
    const counts = { accessors: 0, children: 0, entries: 0, revocations: 0 };
    // Every check reads past the caches: what tidy removes must really be gone, also on another node.
    const indexed = async (hash: string): Promise<TokenEntry | undefined> => {
      const entry = await getJson<TokenEntry>(this.fresh, `id/${hash}`);
      const named = entry ? await this.fresh.get(`accessor/${this.hashOf(entry.accessor)}`) : undefined;
      return named && Buffer.from(named).toString('utf8') === hash ? entry : undefined;
    };
    for (const key of await this.storage.list('accessor/')) {
      const named = await this.fresh.get(`accessor/${key}`);
      const hash = named ? Buffer.from(named).toString('utf8') : '';
      if (!hash || !(await getJson<TokenEntry>(this.fresh, `id/${hash}`))) {
        await this.storage.delete(`accessor/${key}`);
        counts.accessors++;
      }
    }
    for (const hash of await this.storage.list('id/')) {
      const stored = await getJson<TokenEntry>(this.fresh, `id/${hash}`);
      if (!stored) continue;
      if (!(await indexed(hash))) {
        await this.storage.delete(`id/${hash}`);
        counts.entries++;
      } else if (stored.numUses === REVOCATION_PENDING) {
        await this.revokeTree(hash);
        counts.revocations++;
      } else await this.lookupByHash(hash); // revokes it if it has expired
    }
    for (const parent of await this.storage.list('parent/')) {
      const parentHash = parent.replace(/\/$/, '');
      const parentLive = (await indexed(parentHash)) !== undefined;
      for (const child of await this.storage.list(`parent/${parentHash}/`)) {
        const entry = await indexed(child);
        if (entry && !parentLive) {
          await this.locks.run(child, () => this.changeStored(child, (current) => orphaned(current, parentHash)));
        }
        if (!entry || !parentLive) {
          await this.storage.delete(`parent/${parentHash}/${child}`);
          counts.children++;
        }
      }
    }
    return counts;
  }

  /** Whether a token has an entry at all (also while used up or being revoked): tidy leaves its leases alone. */
  async exists(hash: string): Promise<boolean> {
    return (await this.current(hash)) !== undefined;
  }

  /** Sizes of the in-memory state, for metrics and tests: it must not grow with junk. */
  stats(): { cachedEntries: number; rememberedTokens: number; revokedRecently: number } {
    return { cachedEntries: this.cache.size, rememberedTokens: this.hashMemo.size, revokedRecently: this.revoked.size };
  }

  /** The stored entry as it is now (also when used up or pending revocation), or undefined when revoked. */
  private async current(hash: string): Promise<TokenEntry | undefined> {
    if (this.revoked.has(hash)) return undefined;
    const cached = this.cache.get(hash);
    if (cached) return cached;
    const epoch = this.epoch;
    const entry = await this.readIndexed(hash);
    if (!entry || this.revoked.has(hash)) return undefined;
    if (epoch === this.epoch) this.remember(entry);
    return entry;
  }

  /**
   * An entry from storage, only if its accessor index still names it: creation and deletion write both in one
   * transaction, so an entry without its index was written back after its token was deleted (a node that had
   * not yet heard of the revocation) and is not a token.
   */
  private async readIndexed(hash: string): Promise<TokenEntry | undefined> {
    return (await this.readIndexedAsStored(hash, this.storage))?.entry;
  }

  /** The same from `from`, with the bytes the entry was read from: what a change of it checks (changeStored). */
  private async readIndexedAsStored(
    hash: string,
    from: Storage,
  ): Promise<{ entry: TokenEntry; stored: Uint8Array } | undefined> {
    const stored = await from.get(`id/${hash}`);
    if (stored === undefined) return undefined;
    const entry = parseJson<TokenEntry>(stored);
    const indexed = await from.get(`accessor/${this.hashOf(entry.accessor)}`);
    return indexed && Buffer.from(indexed).toString('utf8') === hash ? { entry, stored } : undefined;
  }

  /**
   * Whether a token is neither gone nor being revoked, read past every cache (another node may be revoking it). A
   * token whose last use its request took is still live until that request ends.
   */
  async stillLive(hash: string): Promise<boolean> {
    return this.parentStillLive(hash);
  }

  /** Whether a parent is neither gone nor being revoked, read past every cache (another node may be revoking it). */
  private async parentStillLive(parentHash: string): Promise<boolean> {
    if (this.revoked.has(parentHash)) return false;
    const parent = await getJson<TokenEntry>(this.fresh, `id/${parentHash}`);
    return parent !== undefined && parent.numUses !== REVOCATION_PENDING;
  }

  /** The first step of every revocation: the token answers nothing from here on, on this node and (once stored) on all. */
  private async markRevoking(hash: string): Promise<TokenEntry | undefined> {
    return this.locks.run(hash, async () => {
      const entry = this.cache.get(hash) ?? (await getJson<TokenEntry>(this.storage, `id/${hash}`));
      this.revoked.add(hash);
      if (this.revoked.size > MAX_REVOKED) this.revoked.delete(this.revoked.values().next().value!);
      this.cache.delete(hash);
      this.epoch++;
      this.tell(hash);
      if (entry && entry.numUses !== REVOCATION_PENDING) {
        await this.storage.put(`id/${hash}`, jsonBytes({ ...entry, numUses: REVOCATION_PENDING }));
      }
      return entry;
    });
  }

  /** Handles every child of a token, listing again until none is left (more may be created meanwhile). */
  private async drainChildren(hash: string, handle: (child: string) => Promise<void>): Promise<void> {
    for (let children = await this.storage.list(`parent/${hash}/`); children.length > 0;) {
      for (const child of children) {
        await handle(child);
        // Also when the child's entry was already gone: an index entry left behind must not loop forever.
        await this.storage.delete(`parent/${hash}/${child}`);
      }
      children = await this.storage.list(`parent/${hash}/`);
    }
  }

  private async revokeOne(hash: string, entry: TokenEntry | undefined): Promise<void> {
    if (!entry) return;
    await this.lifecycle.revoking(entry);
    const ops: StorageOp[] = [
      { op: 'delete', key: `id/${hash}` },
      { op: 'delete', key: `accessor/${this.hashOf(entry.accessor)}` },
    ];
    if (entry.parentHash) ops.push({ op: 'delete', key: `parent/${entry.parentHash}/${hash}` });
    await this.storage.transaction(ops);
  }

  /**
   * A change of a token's entry made from what storage holds now, past every cache, and committed only if the entry
   * is still that (a check op), else made again from the newer one: this node's token lock does not keep other
   * nodes out, and two nodes both taking a token's last use would have let it be used (a wrapped answer unwrapped)
   * twice. `change` answers the entry to write, if any, and the result. Run under the token's lock.
   */
  private changeStored<T>(
    hash: string,
    change: (current: TokenEntry | undefined) => ChangeOutcome<T> | Promise<ChangeOutcome<T>>,
  ): Promise<T> {
    const key = `id/${hash}`;
    return retryOnConflict(
      async () => {
        const read = this.revoked.has(hash) ? undefined : await this.readIndexedAsStored(hash, this.fresh);
        const outcome = await change(read?.entry);
        if (outcome.entry) {
          await this.fresh.transaction([
            { op: 'check', key, value: read?.stored ?? null },
            { op: 'put', key, value: jsonBytes(outcome.entry) },
          ]);
          this.remember(outcome.entry);
        }
        return outcome.result;
      },
      () => new CofreError(409, 'the token kept changing on other nodes while this request used it: try again'),
    );
  }

  private batchContext(): BatchContext | undefined {
    const issuing = this.batchIssuing;
    if (!issuing) return undefined;
    return {
      sealer: issuing.sealer,
      mountAccessorOf: (path) => issuing.mountAccessorOf(path),
      lookupByHash: (hash) => this.lookupByHash(hash),
      hashOf: (token) => this.hashOf(token),
    };
  }

  private remember(entry: TokenEntry): void {
    if (this.revoked.has(entry.hash)) return;
    if (this.cache.size >= MAX_CACHE) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(entry.hash, entry);
  }
}

/** A child that loses its parent keeps the rest of its entry as stored (its uses above all); `of`: only this one's. */
function orphaned(current: TokenEntry | undefined, of: string | undefined): ChangeOutcome<void> {
  if (!current || (of !== undefined && current.parentHash !== of)) return { result: undefined };
  return { entry: { ...current, parentHash: '' }, result: undefined };
}
