import { createHmac, randomBytes } from 'node:crypto';
import { badRequest } from './errors.js';
import type { Storage, StorageOp } from './storage.js';
import { getJson, jsonBytes } from './storage-view.js';

/** What the store keeps of a token. The token string itself is never stored: entries are keyed by its salted hash. */
export interface TokenEntry {
  /** Salted hash of the token: the storage key, never the token. */
  hash: string;
  accessor: string;
  parentHash: string; // "" for orphans
  policies: string[];
  meta: Record<string, string>;
  displayName: string;
  numUses: number; // 0 = unlimited; -1 = last use taken, revocation pending
  creationTime: number; // unix seconds
  creationTtl: number; // seconds, 0 = never expires
  explicitMaxTtl: number;
  period: number;
  renewable: boolean;
  expireTime: number; // unix ms, 0 = never
  path: string;
}

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
}

const TOKEN_PREFIX = 'cvs.';
const SALT_KEY = 'salt';
const MAX_CACHE = 100_000;
const MAX_HASH_MEMO = 10_000;

/**
 * The token store, on its own barrier view. Tokens are looked up by HMAC-SHA256(salt, token); accessors the same
 * way. Children are indexed under their parent so revoking a parent finds them without a scan. Lookups are
 * cached in memory; every change to an entry goes through this class, which keeps the cache right.
 */
export class TokenStore {
  private salt: Buffer = Buffer.alloc(0);
  private readonly cache = new Map<string, TokenEntry>();
  /** token → hash for recently used tokens: the HMAC is a fixed cost on every request otherwise. */
  private readonly hashMemo = new Map<string, string>();

  constructor(
    private readonly storage: Storage,
    /** Runs before a token is deleted: its leases are revoked first, as in Vault. */
    private readonly beforeRevoke: (hash: string) => Promise<void> = async () => {},
  ) {}

  /** Forgets every cached entry and token (on seal, and before loading). */
  clear(): void {
    this.cache.clear();
    this.hashMemo.clear();
  }

  /** Drops one cached entry: another node changed or revoked it. */
  forget(hash: string): void {
    this.cache.delete(hash);
  }

  async load(): Promise<void> {
    this.clear();
    const stored = await this.storage.get(SALT_KEY);
    if (stored) this.salt = Buffer.from(stored);
    else {
      this.salt = randomBytes(32);
      await this.storage.put(SALT_KEY, this.salt);
    }
  }

  hashOf(secret: string): string {
    return createHmac('sha256', this.salt).update(secret).digest('hex');
  }

  private tokenHash(token: string): string {
    let hash = this.hashMemo.get(token);
    if (hash === undefined) {
      hash = this.hashOf(token);
      if (this.hashMemo.size >= MAX_HASH_MEMO) this.hashMemo.delete(this.hashMemo.keys().next().value!);
      this.hashMemo.set(token, hash);
    }
    return hash;
  }

  async create(spec: NewToken): Promise<{ token: string; entry: TokenEntry }> {
    const token = spec.id ?? TOKEN_PREFIX + randomBytes(24).toString('base64url');
    const hash = this.hashOf(token);
    if (spec.id !== undefined && (await this.lookupByHash(hash))) throw badRequest('token already exists');
    const now = Date.now();
    const ttl = spec.period ? spec.period : spec.ttl;
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
      expireTime: ttl > 0 ? now + ttl * 1000 : 0,
      path: spec.path,
    };
    const ops: StorageOp[] = [
      { op: 'put', key: `id/${hash}`, value: jsonBytes(entry) },
      { op: 'put', key: `accessor/${this.hashOf(entry.accessor)}`, value: Buffer.from(hash) },
    ];
    if (entry.parentHash) ops.push({ op: 'put', key: `parent/${entry.parentHash}/${hash}`, value: Buffer.alloc(0) });
    await this.storage.transaction(ops);
    this.remember(entry);
    return { token, entry };
  }

  /** The live entry for a token string, or undefined for unknown, expired or used-up tokens. */
  async lookup(token: string): Promise<TokenEntry | undefined> {
    if (typeof token !== 'string' || token === '') return undefined;
    return this.lookupByHash(this.tokenHash(token));
  }

  async lookupByHash(hash: string): Promise<TokenEntry | undefined> {
    let entry = this.cache.get(hash);
    if (!entry) {
      entry = await getJson<TokenEntry>(this.storage, `id/${hash}`);
      if (!entry) return undefined;
      this.remember(entry);
    }
    if (entry.numUses < 0) return undefined;
    if (entry.expireTime !== 0 && entry.expireTime <= Date.now()) {
      await this.revokeTree(entry.hash);
      return undefined;
    }
    return entry;
  }

  async lookupAccessor(accessor: string): Promise<TokenEntry | undefined> {
    if (typeof accessor !== 'string' || accessor === '') return undefined;
    const hash = await this.storage.get(`accessor/${this.hashOf(accessor)}`);
    return hash ? this.lookupByHash(Buffer.from(hash).toString('utf8')) : undefined;
  }

  /**
   * Counts one use of a limited-use token. The cache is updated before any await, so two concurrent requests
   * cannot both take the last use. Returns true when this was the last use: the caller revokes the token once
   * its request is done (the request itself may still need the entry, e.g. lookup-self).
   */
  async use(entry: TokenEntry): Promise<boolean> {
    if (entry.numUses === 0) return false;
    const next = { ...entry, numUses: entry.numUses === 1 ? -1 : entry.numUses - 1 };
    this.remember(next);
    await this.storage.put(`id/${entry.hash}`, jsonBytes(next));
    return next.numUses === -1;
  }

  /** Renews as Vault does: the increment (or the original TTL) from now, capped by the explicit max TTL. */
  async renew(entry: TokenEntry, increment: number, maxTtl: number): Promise<TokenEntry> {
    if (!entry.renewable) throw badRequest('invalid lease ID: lease is not renewable');
    if (entry.creationTtl === 0) return entry; // a token without TTL never expires: nothing to extend
    const now = Date.now();
    let ttl = entry.period || increment || entry.creationTtl;
    if (maxTtl > 0) ttl = Math.min(ttl, maxTtl);
    let expireTime = now + ttl * 1000;
    if (entry.explicitMaxTtl > 0) {
      expireTime = Math.min(expireTime, (entry.creationTime + entry.explicitMaxTtl) * 1000);
    }
    const renewed = { ...entry, expireTime };
    await this.save(renewed);
    return renewed;
  }

  /** Revokes a token and, recursively, every token created under it. */
  async revokeTree(hash: string): Promise<void> {
    for (const child of await this.storage.list(`parent/${hash}/`)) await this.revokeTree(child);
    await this.revokeOne(hash);
  }

  /** Revokes only this token; its children become orphans. */
  async revokeOrphan(hash: string): Promise<void> {
    const children = await this.storage.list(`parent/${hash}/`);
    for (const child of children) {
      const entry = await getJson<TokenEntry>(this.storage, `id/${child}`);
      if (entry) await this.save({ ...entry, parentHash: '' });
    }
    await this.storage.transaction(children.map((c) => ({ op: 'delete' as const, key: `parent/${hash}/${c}` })));
    await this.revokeOne(hash);
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

  private async revokeOne(hash: string): Promise<void> {
    const entry = this.cache.get(hash) ?? (await getJson<TokenEntry>(this.storage, `id/${hash}`));
    if (!entry) return;
    await this.beforeRevoke(hash);
    this.cache.delete(hash);
    const ops: StorageOp[] = [
      { op: 'delete', key: `id/${hash}` },
      { op: 'delete', key: `accessor/${this.hashOf(entry.accessor)}` },
    ];
    if (entry.parentHash) ops.push({ op: 'delete', key: `parent/${entry.parentHash}/${hash}` });
    await this.storage.transaction(ops);
  }

  private async save(entry: TokenEntry): Promise<void> {
    await this.storage.put(`id/${entry.hash}`, jsonBytes(entry));
    this.remember(entry);
  }

  private remember(entry: TokenEntry): void {
    if (this.cache.size >= MAX_CACHE) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(entry.hash, entry);
  }
}
