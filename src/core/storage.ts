/**
 * The storage port: the only way Cofre persists anything. Adapters (src/storage/) hold opaque bytes and are
 * untrusted: only the barrier reads and writes them, so everything stored through a Storage handed to the
 * rest of the core is already encrypted.
 */
export interface StorageEntry {
  key: string;
  value: Uint8Array;
}

export type StorageOp = { op: 'put'; key: string; value: Uint8Array } | { op: 'delete'; key: string };

export interface Storage {
  /** The value stored under key, or undefined. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** Durable when the promise resolves. */
  put(key: string, value: Uint8Array): Promise<void>;
  /** Deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /**
   * The keys directly under prefix, sorted, relative to prefix, as Vault lists: a key that continues past the
   * next "/" is returned once as "child/".
   */
  list(prefix: string): Promise<string[]>;
  /** Applies every operation or none; durable when the promise resolves. */
  transaction(ops: StorageOp[]): Promise<void>;
  close(): Promise<void>;
}
