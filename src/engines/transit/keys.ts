import { retryOnConflict } from '../../core/conflict-retry.js';
import { badRequest, CofreError } from '../../core/errors.js';
import { KeyLocks } from '../../core/key-locks.js';
import type { Storage } from '../../core/storage.js';
import { getJson, jsonBytes, parseJson } from '../../core/storage-view.js';
import { newKey, type KeyType } from './ciphers.js';

/** Where a named key lives in the mount's storage (Vault's name, `policy/<name>`); the barrier encrypts it. */
export const KEY_PREFIX = 'policy/';

/** One named key as stored: every version's material, and the rules that say which versions may be used. */
export interface StoredKey {
  name: string;
  type: KeyType;
  /** Version number → the key (base64) and when it was made (Unix seconds). */
  versions: Record<string, { key: string; creation_time: number }>;
  latest_version: number;
  min_decryption_version: number;
  /** 0: the latest version. */
  min_encryption_version: number;
  deletion_allowed: boolean;
}

/** A stored key with its material decoded once, as encrypt and decrypt use it. */
export interface TransitKey extends StoredKey {
  material: Map<number, Buffer>;
}

const NAME = /^\w(?:[\w.@-]*\w)?$/;

export function checkKeyName(name: string): void {
  if (!NAME.test(name)) {
    throw badRequest(`invalid key name "${name}": letters, digits, "_", "-", "." and "@", not at either end`);
  }
}

function decode(stored: StoredKey): TransitKey {
  const material = new Map<number, Buffer>();
  for (const [version, entry] of Object.entries(stored.versions))
    material.set(Number(version), Buffer.from(entry.key, 'base64'));
  return { ...stored, material };
}

function addVersion(stored: StoredKey, version: number): void {
  stored.versions[String(version)] = {
    key: newKey().toString('base64'),
    creation_time: Math.floor(Date.now() / 1000),
  };
  stored.latest_version = version;
}

/**
 * The mount's named keys. Decoded keys are cached, since every encrypt and decrypt needs one; every change runs
 * under the key's lock and writes storage before the cache, and another node's change drops the cached copy. The
 * lock keeps this node's changes in turn; each commit also checks that the key is still what the change read, for
 * two nodes making or rotating one key at once would each store key material of their own, and the one written
 * over could no longer decrypt what was encrypted with it meanwhile.
 */
export class TransitKeys {
  private readonly cache = new Map<string, TransitKey>();
  private readonly locks = new KeyLocks();
  /** Bumped by every invalidation, so a read that raced one does not cache what it read before it. */
  private generation = 0;

  constructor(private readonly storage: Storage) {}

  async get(name: string): Promise<TransitKey | undefined> {
    const cached = this.cache.get(name);
    if (cached) return cached;
    const generation = this.generation;
    const stored = await getJson<StoredKey>(this.storage, KEY_PREFIX + name);
    if (!stored) return undefined;
    const key = decode(stored);
    if (generation === this.generation) this.cache.set(name, key);
    return key;
  }

  list(): Promise<string[]> {
    return this.storage.list(KEY_PREFIX);
  }

  /** The key, made with version 1 when it does not exist yet; `created` tells which. */
  async getOrCreate(name: string, type: KeyType): Promise<{ key: TransitKey; created: boolean }> {
    checkKeyName(name);
    const existing = await this.get(name);
    if (existing) return { key: existing, created: false };
    return this.change(name, async ({ stored, key }) => {
      if (key) return { key, created: false };
      const made: StoredKey = {
        name,
        type,
        versions: {},
        latest_version: 0,
        min_decryption_version: 1,
        min_encryption_version: 0,
        deletion_allowed: false,
      };
      addVersion(made, 1);
      return { key: await this.save(made, stored), created: true };
    });
  }

  /** Changes a copy of a key and stores it; `change` throws to refuse. Undefined: no such key. */
  async update(name: string, change: (stored: StoredKey) => void): Promise<TransitKey | undefined> {
    return this.change(name, async ({ stored, key }) => {
      if (!key) return undefined;
      const { material: _material, ...fields } = key;
      const copy: StoredKey = structuredClone(fields);
      change(copy);
      return this.save(copy, stored);
    });
  }

  rotate(name: string): Promise<TransitKey | undefined> {
    return this.update(name, (stored) => addVersion(stored, stored.latest_version + 1));
  }

  /** Deletes a key that allows it; false when there is no such key. */
  async delete(name: string): Promise<boolean> {
    return this.change(name, async ({ stored, key }) => {
      if (!key) return false;
      if (!key.deletion_allowed) throw badRequest('deletion is not allowed for this key');
      await this.storage.transaction([
        { op: 'check', key: KEY_PREFIX + name, value: stored },
        { op: 'delete', key: KEY_PREFIX + name },
      ]);
      this.cache.delete(name);
      return true;
    });
  }

  /**
   * Drops every decoded key (on seal and unmount), so no key material stays reachable from the engine while the
   * server is sealed. The buffers are not zeroed: a request that already holds a key finishes with it intact
   * rather than encrypting under zeros.
   */
  clear(): void {
    this.generation++;
    this.cache.clear();
  }

  /** How many decoded keys are held now. */
  get cached(): number {
    return this.cache.size;
  }

  invalidate(storageKey: string): void {
    if (!storageKey.startsWith(KEY_PREFIX)) return;
    this.generation++;
    this.cache.delete(storageKey.slice(KEY_PREFIX.length));
  }

  /**
   * Runs `step` under the key's lock on the key as stored (read past the cache: under the lock, the stored entry is
   * the truth), again on what is stored then when its commit finds that another node changed the key meanwhile.
   */
  private change<T>(
    name: string,
    step: (read: { stored: Uint8Array | null; key?: TransitKey }) => Promise<T>,
  ): Promise<T> {
    return this.locks.run(name, () =>
      retryOnConflict(
        async () => {
          const stored = (await this.storage.get(KEY_PREFIX + name)) ?? null;
          return step({ stored, key: stored ? decode(parseJson<StoredKey>(stored)) : undefined });
        },
        () => new CofreError(409, `key "${name}" kept changing on other nodes while this change was made: try again`),
      ),
    );
  }

  /** Stores a key that was `previous` when read (null: none), checked in the commit, then caches it. */
  private async save(stored: StoredKey, previous: Uint8Array | null): Promise<TransitKey> {
    const storageKey = KEY_PREFIX + stored.name;
    await this.storage.transaction([
      { op: 'check', key: storageKey, value: previous },
      { op: 'put', key: storageKey, value: jsonBytes(stored) },
    ]);
    const key = decode(stored);
    this.generation++;
    this.cache.set(stored.name, key);
    return key;
  }
}
