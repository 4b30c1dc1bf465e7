import { isStorageConflict, type Committed, type Storage, type StorageOp } from './storage.js';

/**
 * A Storage confined to one prefix: an engine sees only its own mount's entries and cannot name another's.
 * close() is a no-op because the view does not own the storage beneath it.
 */
export class StorageView implements Storage {
  constructor(
    private readonly inner: Storage,
    readonly prefix: string,
  ) {}

  get(key: string): Promise<Uint8Array | undefined> {
    return this.inner.get(this.prefix + key);
  }

  put(key: string, value: Uint8Array): Promise<void> {
    return this.inner.put(this.prefix + key, value);
  }

  delete(key: string): Promise<void> {
    return this.inner.delete(this.prefix + key);
  }

  list(prefix: string): Promise<string[]> {
    return this.inner.list(this.prefix + prefix);
  }

  transaction(ops: StorageOp[]): Promise<Committed> {
    return this.inner.transaction(this.qualified(ops)).then(this.keysFromHere, this.seenFromHere);
  }

  /** Whether one transaction can span this view and `other`: both are views of the same store. */
  sharesStoreWith(other: StorageView): boolean {
    return other.inner === this.inner;
  }

  /**
   * This view's ops and `other`'s, all or none, in one transaction of the store beneath both. Resolves with the keys
   * given to `other`'s append ops, as `other` names them (this view's ops must append nothing).
   */
  transactionWith(ops: StorageOp[], other: StorageView, otherOps: StorageOp[]): Promise<Committed> {
    if (!this.sharesStoreWith(other)) {
      return Promise.reject(new Error('one transaction cannot span views of two stores'));
    }
    if (ops.some((op) => op.op === 'append')) return Promise.reject(new Error('only the other view may append'));
    return this.inner
      .transaction([...this.qualified(ops), ...other.qualified(otherOps)])
      .then(other.keysFromHere, this.seenFromHere);
  }

  /** Keys the store gave append ops, as this view names them. */
  private readonly keysFromHere = (committed: Committed): Committed =>
    committed?.map((key) => key.slice(this.prefix.length));

  /** A refusal names this view's keys as its callers know them (what the checked keys held, too). */
  private readonly seenFromHere = (err: unknown): never => {
    throw isStorageConflict(err) ? err.underPrefix(this.prefix) : err;
  };

  private qualified(ops: StorageOp[]): StorageOp[] {
    return ops.map((op) => ({ ...op, key: this.prefix + op.key }));
  }

  async close(): Promise<void> {}

  view(prefix: string): StorageView {
    return new StorageView(this.inner, this.prefix + prefix);
  }
}

/** JSON helpers: most of the core stores small JSON documents. */
export async function getJson<T>(storage: Storage, key: string): Promise<T | undefined> {
  const bytes = await storage.get(key);
  return bytes === undefined ? undefined : parseJson<T>(bytes);
}

/** A stored JSON document, read in place (the bytes may be the read cache's, which must not be changed). */
export function parseJson<T>(bytes: Uint8Array): T {
  return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as T;
}

/** Parses of stored documents, by the bytes object they came from (see parseJsonShared). */
const sharedParses = new WeakMap<Uint8Array, unknown>();

/**
 * A stored JSON document parsed once per bytes object, for hot read paths that only look at it: the read cache
 * hands the same bytes to every hit, so its hits share one parse instead of each parsing again (a KV read's
 * metadata parse was 7 % of a server thread). Frozen throughout, since every later reader of those bytes gets the
 * same object: whoever needs to change it parses its own copy with parseJson.
 */
export function parseJsonShared<T>(bytes: Uint8Array): T {
  let parsed = sharedParses.get(bytes);
  if (parsed === undefined) {
    parsed = deepFreeze(parseJson<unknown>(bytes));
    sharedParses.set(bytes, parsed);
  }
  return parsed as T;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

export function jsonBytes(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

export async function putJson(storage: Storage, key: string, value: unknown): Promise<void> {
  await storage.put(key, jsonBytes(value));
}
