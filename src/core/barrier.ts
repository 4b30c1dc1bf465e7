import { NONCE_BYTES, open, seal, sealAfter } from './aead.js';
import { retryOnConflict } from './conflict-retry.js';
import { CofreError, sealedError } from './errors.js';
import { Keyring } from './keyring.js';
import { OneAtATime } from './one-at-a-time.js';
import { ownCopy, ReadCache, type CachedEntry } from './read-cache.js';
import {
  LOG_POSITION_DIGITS,
  StorageConflictError,
  type CheckOp,
  type Committed,
  type Storage,
  type StorageOp,
} from './storage.js';

export const KEYRING_PATH = 'core/keyring';
const FORMAT_VERSION = 1;
/**
 * An entry appended to a log (the storage port's append op): the store chose its key, so the additional data is
 * the log's name instead (see logAad), and the version byte says so. Whoever can write the store can therefore
 * reorder the entries of one log, though not move one to any other key or log: the change log's order is not bound
 * by the cipher, its contents are.
 */
const FORMAT_LOG_ENTRY = 2;
const HEADER_BYTES = 5; // version byte + big-endian uint32 term
const READ_CACHE_BYTES = 32 * 1024 * 1024;
/**
 * What refusals found, kept for their callers' next checks (Barrier.handedOut). A KV write comes back for its entry
 * within a turn; other callers (a token's or a secret ID's change, which check what they read past the cache, so
 * are refused here rather than by storage) read again instead and never do, nor does a change that gives up (a
 * failed check-and-set): the oldest entries go first.
 */
const HANDED_OUT_ENTRIES = 256;
const HANDED_OUT_BYTES = 4 * 1024 * 1024;

/** What seals values that are not storage entries (batch tokens, forwarded key-ceremony calls) with the barrier. */
export type ValueSealer = Pick<Barrier, 'encryptValue' | 'decryptValue'>;

/**
 * The security barrier: every entry that passes through it is AES-256-GCM encrypted under the keyring's active
 * term, with its path as additional data (so a ciphertext copied to another path fails to open). The term is in
 * each entry's header, so a rotation adds a key without rewriting old entries.
 */
export class Barrier implements Storage {
  private keyring: Keyring | undefined;
  private readonly cache = new ReadCache(READ_CACHE_BYTES);
  /**
   * What the latest refusals of this node's transactions found in the keys they checked, opened: the plaintext
   * handed to the refused caller with the write id of its ciphertext, by key. Only a check of that very plaintext
   * (the caller making its change again on what it was handed) finds it here; no read is answered from it, so a
   * value that another node has changed since cannot reach a reader, as it could from the cache. Bounded, and
   * emptied as the barrier seals.
   */
  private readonly handedOut = new Map<string, CachedEntry>();
  private handedOutBytes = 0;

  /** Rotations one at a time on this node (other nodes' are kept apart by the keyring's check). */
  private readonly rotations = new OneAtATime();

  /** Single flight: many reads may meet a new term at once; one reload serves them. */
  private reloading: Promise<void> | undefined;

  constructor(
    private readonly physical: Storage,
    /**
     * Reads the keyring again (with the root key the core holds): another node that shares the store rotated it,
     * and an entry written under the new term arrived before the notification that says so.
     */
    private readonly reloadKeyring?: () => Promise<void>,
  ) {}

  get sealed(): boolean {
    return this.keyring === undefined;
  }

  async initialized(): Promise<boolean> {
    return (await this.physical.get(KEYRING_PATH)) !== undefined;
  }

  /**
   * Creates the first keyring, protected by rootKey, and leaves the barrier unsealed. The core guards against
   * initializing twice (its seal config is written last, and `checks` hold its claim on the store), so a keyring
   * left by an interrupted init is replaced.
   */
  async initialize(rootKey: Buffer, checks: CheckOp[] = []): Promise<void> {
    const keyring = Keyring.create();
    await this.physical.transaction([
      ...checks,
      { op: 'put', key: KEYRING_PATH, value: seal(rootKey, keyring.serialize(), Buffer.from(KEYRING_PATH)) },
    ]);
    this.keyring = keyring;
  }

  /** Throws when rootKey does not open the keyring. */
  async unseal(rootKey: Buffer): Promise<void> {
    const stored = await this.physical.get(KEYRING_PATH);
    if (!stored) throw new Error('barrier is not initialized');
    this.keyring = Keyring.deserialize(open(rootKey, stored, Buffer.from(KEYRING_PATH)));
  }

  seal(): void {
    this.keyring = undefined;
    this.cache.clear();
    this.handedOut.clear();
    this.handedOutBytes = 0;
  }

  /**
   * Adds a key term and makes it active; entries written before stay readable under their own term. The next term
   * is built on the keyring as stored, and committed only if it is still stored so: built on this barrier's copy,
   * two rotations at once (here, or on another node not yet told of the first) each made a term with a key of its
   * own, and the second saved over the first, whose entries could then never be read again.
   */
  rotate(rootKey: Buffer): Promise<{ term: number; installTime: Date }> {
    this.unsealedKeyring();
    return this.rotations.run(() =>
      retryOnConflict(
        async () => {
          const stored = await this.physical.get(KEYRING_PATH);
          if (!stored) throw new Error('barrier is not initialized');
          const next = Keyring.deserialize(open(rootKey, stored, Buffer.from(KEYRING_PATH))).rotate();
          await this.physical.transaction([
            { op: 'check', key: KEYRING_PATH, value: stored },
            { op: 'put', key: KEYRING_PATH, value: seal(rootKey, next.serialize(), Buffer.from(KEYRING_PATH)) },
          ]);
          // Sealed meanwhile: the next unseal reads the committed keyring; setting it here would unseal.
          if (this.sealed) throw sealedError();
          this.keyring = next;
          const active = next.active();
          return { term: active.term, installTime: active.installTime };
        },
        () => new CofreError(409, 'the barrier key was being rotated on other nodes at the same time; try again'),
      ),
    );
  }

  /**
   * Vault's barrier Encrypt, for values kept outside storage (batch tokens): sealed under the active term and bound
   * to `context` as additional data, so a storage entry's ciphertext is never accepted in its place.
   */
  encryptValue(context: string, value: Uint8Array): Buffer {
    return encrypt(this.unsealedKeyring(), context, value);
  }

  /**
   * Opens what encryptValue sealed, under any term this node knows (a rotation keeps old terms). Throws for
   * anything altered, truncated or forged. Never reloads the keyring: a forged term must not cost a storage read.
   */
  decryptValue(context: string, sealed: Uint8Array): Buffer {
    return decrypt(this.unsealedKeyring(), context, sealed, false);
  }

  keyStatus(): { term: number; installTime: Date } {
    const active = this.unsealedKeyring().active();
    return { term: active.term, installTime: active.installTime };
  }

  /** Callers must not modify the returned bytes: they may be shared with the read cache. */
  async get(key: string): Promise<Uint8Array | undefined> {
    const keyring = this.unsealedKeyring();
    const cached = this.cache.get(key);
    if (cached) return cached.plain;
    const read = this.cache.startRead(key);
    let entry: CachedEntry | undefined;
    try {
      const stored = await this.physical.get(key);
      if (stored === undefined) return undefined;
      entry = { plain: await this.decrypt(keyring, key, stored), written: writeIdOf(stored) };
      return entry.plain;
    } finally {
      this.cache.endRead(read, entry);
    }
  }

  /** Decrypts, reading the keyring again once if the entry's term is newer than any this node knows. */
  private async decrypt(keyring: Keyring, key: string, stored: Uint8Array): Promise<Buffer> {
    if (!this.reloadKeyring || keyring.term(termOf(stored)) || termOf(stored) <= keyring.active().term) {
      return decrypt(keyring, key, stored);
    }
    this.reloading ??= this.reloadKeyring().finally(() => (this.reloading = undefined));
    await this.reloading;
    return decrypt(this.unsealedKeyring(), key, stored);
  }

  /** The same store without the read cache: for the few checks that must see another node's latest commit. */
  uncached(): Storage {
    return {
      get: async (key) => {
        const keyring = this.unsealedKeyring();
        const stored = await this.physical.get(key);
        return stored === undefined ? undefined : this.decrypt(keyring, key, stored);
      },
      put: (key, value) => this.put(key, value),
      delete: (key) => this.delete(key),
      list: (prefix) => this.list(prefix),
      transaction: (ops) => this.transaction(ops),
      close: async () => undefined,
    };
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    await this.transaction([{ op: 'put', key, value }]);
  }

  async delete(key: string): Promise<void> {
    await this.transaction([{ op: 'delete', key }]);
  }

  /** Drops every cached entry (another node changed more than it could name). */
  invalidateAll(): void {
    this.cache.clear();
  }

  /** Drops a cached entry that another process changed (for storage shared between nodes). */
  invalidate(key: string): void {
    this.cache.invalidateRemote(key);
  }

  async list(prefix: string): Promise<string[]> {
    this.unsealedKeyring();
    return this.physical.list(prefix);
  }

  async transaction(ops: StorageOp[]): Promise<Committed> {
    const keyring = this.unsealedKeyring();
    // Checks of what the cache holds resolve at once, so that the commit is issued in the same turn as the call and
    // joins the group commit of the writes made in that turn.
    const read = ops.some((op) => op.op === 'check' && !this.writeIdOfCheck(op));
    const known = read ? await this.writeIdsFromStore(ops) : undefined;
    const sealed = ops.map((op): StorageOp => {
      if (op.op === 'put') return { ...op, value: encrypt(keyring, op.key, op.value) };
      // Not cached: its key is known only once committed, and only other nodes' subscribers read it back.
      if (op.op === 'append') return { ...op, value: encrypt(keyring, op.key, op.value, FORMAT_LOG_ENTRY) };
      if (op.op !== 'check') return op;
      const written = known?.get(op.key) ?? this.writeIdOfCheck(op)!;
      return written === 'absent'
        ? { op: 'check', key: op.key, value: null }
        : { op: 'check', key: op.key, prefix: Buffer.from(written, 'latin1') };
    });
    const written = ops.filter((op) => op.op === 'put' || op.op === 'delete');
    // Used, if it was: what was handed out serves one check.
    for (const op of ops) if (op.op === 'check' && 'value' in op) this.forgetHandedOut(op.key, op.value);
    // The cache keeps what it holds of these keys until the commit: until then that is still what the store holds.
    // Afterwards no read of them that began before fills what it read, and the cache holds the committed value or
    // nothing.
    const write = this.cache.startWrite(written.map((op) => op.key));
    try {
      let committed: Committed;
      try {
        committed = await this.physical.transaction(sealed);
      } catch (err) {
        // A check failed: what this node has cached of the checked keys is older than the store. The retry makes
        // its change on what the refusal found, or reads.
        for (const op of err instanceof StorageConflictError ? ops : written) this.cache.invalidate(op.key);
        throw err instanceof StorageConflictError ? await this.opened(err, keyring) : err;
      }
      // Committed: the next read of these keys (a KV write reads its metadata first) needs neither storage nor AES.
      // The last op of each key decides what the cache holds of it. Sealed meanwhile, the cache was cleared, which
      // replace() notices.
      const last = new Map<string, number>();
      ops.forEach((op, i) => (op.op === 'put' || op.op === 'delete') && last.set(op.key, i));
      ops.forEach((op, i) => {
        if (op.op === 'check' || op.op === 'append') return;
        const stored = sealed[i]!;
        if (op.op !== 'put' || stored.op !== 'put' || last.get(op.key) !== i) return this.cache.invalidate(op.key);
        this.cache.replace(write, op.key, { plain: ownCopy(op.value), written: writeIdOf(stored.value) });
      });
      return committed;
    } finally {
      this.cache.endWrite(write);
    }
  }

  /**
   * What storage must find for a check of a plaintext: no entry, or an entry that begins with the header and nonce
   * of the one the cache holds with that very plaintext (what a read returned or a write kept, usually just
   * before): a nonce is drawn for each write, so those bytes name one ciphertext. Undefined when the cache cannot
   * say. Callers check values they read; a prefix of plaintext means nothing to storage.
   */
  private writeIdOfCheck(op: CheckOp): string | 'absent' | undefined {
    if ('prefix' in op) throw new TypeError('the barrier checks values as read, not prefixes');
    if (op.value === null) return 'absent';
    const cached = this.cache.get(op.key);
    if (cached?.plain === op.value) return cached.written;
    const handed = this.handedOut.get(op.key);
    return handed?.plain === op.value ? handed.written : undefined;
  }

  /** Lets go of what was handed out for `key`: only if it was `plain` itself, when given. */
  private forgetHandedOut(key: string, plain?: Uint8Array | null): void {
    const entry = this.handedOut.get(key);
    if (!entry || (plain !== undefined && entry.plain !== plain)) return;
    this.handedOut.delete(key);
    this.handedOutBytes -= entry.plain.length;
  }

  private handOut(key: string, entry: CachedEntry): void {
    this.forgetHandedOut(key);
    this.handedOut.set(key, entry);
    this.handedOutBytes += entry.plain.length;
    // A Map iterates in insertion order: the oldest first.
    for (const oldest of this.handedOut.keys()) {
      if (this.handedOut.size <= HANDED_OUT_ENTRIES && this.handedOutBytes <= HANDED_OUT_BYTES) break;
      this.forgetHandedOut(oldest);
    }
  }

  /**
   * A refusal as its caller sees it: what the store found in the checked keys, opened, and kept in handedOut for
   * the caller's next check. An entry that does not open is left out (the caller reads it, and hears why).
   */
  private async opened(err: StorageConflictError, keyring: Keyring): Promise<StorageConflictError> {
    const found = err.found();
    if (!found || found.size === 0) return err;
    const plain = new Map<string, Uint8Array | null>();
    for (const [key, stored] of found) {
      if (stored === null) {
        plain.set(key, null);
        continue;
      }
      const opened = await this.decrypt(keyring, key, stored).catch(() => undefined);
      // Sealed meanwhile: nothing plain may stay behind.
      if (this.sealed) return new StorageConflictError(err.key);
      if (opened === undefined) continue;
      this.handOut(key, { plain: opened, written: writeIdOf(stored) });
      plain.set(key, opened);
    }
    return new StorageConflictError(err.key, plain);
  }

  /**
   * The same, read from storage when the cache cannot say: the entry's, if it opens to the plaintext the caller
   * read; anything else already fails the check. (A WeakMap from each plaintext handed out to its ciphertext spared
   * this read when the cache had let the entry go, but its ephemerons made each full GC long enough to double the
   * write p99; keeping each cached entry's ciphertext, or a SHA-256 of it, cost 7-10 % of SQLite's writes.)
   */
  private async writeIdsFromStore(ops: StorageOp[]): Promise<Map<string, string | 'absent'>> {
    const known = new Map<string, string | 'absent'>();
    for (const op of ops) {
      if (op.op !== 'check') continue;
      if ('prefix' in op || op.value === null) {
        known.set(op.key, this.writeIdOfCheck(op)!);
        continue;
      }
      const stored = await this.physical.get(op.key);
      // Refused here rather than by storage: what the cache holds of the key is not what the store holds either,
      // and the caller is handed what was read, as storage's refusals are (see opened).
      if (stored === undefined) {
        this.cache.invalidate(op.key);
        throw new StorageConflictError(op.key, new Map([[op.key, null]]));
      }
      const opened = await this.decrypt(this.unsealedKeyring(), op.key, stored);
      // Sealed meanwhile: nothing plain may stay behind.
      if (this.sealed) throw sealedError();
      if (!opened.equals(op.value)) {
        this.cache.invalidate(op.key);
        this.handOut(op.key, { plain: opened, written: writeIdOf(stored) });
        throw new StorageConflictError(op.key, new Map([[op.key, opened]]));
      }
      known.set(op.key, writeIdOf(stored));
    }
    return known;
  }

  async close(): Promise<void> {
    this.seal();
  }

  private unsealedKeyring(): Keyring {
    if (!this.keyring) throw sealedError();
    return this.keyring;
  }
}

/**
 * An entry's header and nonce, as a short heap string (a Buffer slice would pin the pooled slab it came from): what
 * tells this write's ciphertext from every other (check ops, above).
 */
function writeIdOf(stored: Uint8Array): string {
  return Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength).toString(
    'latin1',
    0,
    HEADER_BYTES + NONCE_BYTES,
  );
}

/** Each entry's header is written here, then copied into the entry: one buffer per thread, not one per write. */
const header = Buffer.alloc(HEADER_BYTES);

/** `path`: the entry's key, or for a log entry (FORMAT_LOG_ENTRY) the log's. */
function encrypt(keyring: Keyring, path: string, value: Uint8Array, format = FORMAT_VERSION): Buffer {
  const { term, cipherKey } = keyring.active();
  header.writeUInt8(format, 0);
  header.writeUInt32BE(term, 1);
  return sealAfter(header, cipherKey, value, format === FORMAT_LOG_ENTRY ? logAad(path) : Buffer.from(path));
}

/**
 * A log entry's additional data: its log's name, marked so that it can never equal an entry key's (no key begins
 * with NUL: each begins with the prefix of the view it was written through), so no other entry's ciphertext opens
 * as a log entry, nor a log entry's as another.
 */
function logAad(log: string): Buffer {
  return Buffer.from(`\0log\0${log}`);
}

/** The key term in an entry's header (0 for an entry too short to have one: decrypt refuses it). */
function termOf(stored: Uint8Array): number {
  return stored.byteLength >= HEADER_BYTES ? Buffer.from(stored.buffer, stored.byteOffset, 5).readUInt32BE(1) : 0;
}

/** `entry`: whether `path` is a storage key, whose entry may be a log's (a value sealed elsewhere never is). */
function decrypt(keyring: Keyring, path: string, stored: Uint8Array, entry = true): Buffer {
  const buf = Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength);
  const format = buf.length < HEADER_BYTES ? 0 : buf.readUInt8(0);
  const logEntry = format === FORMAT_LOG_ENTRY && entry && path.length > LOG_POSITION_DIGITS;
  if (format !== FORMAT_VERSION && !logEntry) throw new Error(`barrier entry ${path} has an unknown format`);
  const term = buf.readUInt32BE(1);
  const termKey = keyring.term(term);
  if (!termKey) throw new Error(`barrier entry ${path} uses unknown key term ${term}`);
  const aad = logEntry ? logAad(path.slice(0, -LOG_POSITION_DIGITS)) : Buffer.from(path);
  return open(termKey.cipherKey, buf.subarray(HEADER_BYTES), aad);
}
