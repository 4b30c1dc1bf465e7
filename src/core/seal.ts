/**
 * A seal protects the root key, which in turn encrypts the barrier's keyring. Shamir asks operators for key
 * shares; an HSM (PKCS#11) or KMS seal unwraps by itself and hands out recovery keys instead — both fit here.
 */
export interface SealConfig {
  type: string;
  secret_shares: number;
  secret_threshold: number;
}

export interface WrappedRootKey {
  /** What the core stores beside the barrier (never the root key in clear). */
  stored: Buffer;
  /** Handed once to the operators at init: unseal keys for Shamir, recovery keys for auto seals. */
  keyShares: Buffer[];
}

export interface Seal {
  readonly type: string;
  /** True when unsealing needs no operator input (HSM, KMS). */
  readonly autoUnseal: boolean;
  wrapRootKey(rootKey: Buffer, shares: number, threshold: number): Promise<WrappedRootKey>;
  /** Throws SealKeyError when the shares (or the device's key) do not open the stored root key. */
  unwrapRootKey(stored: Buffer, keyShares: Buffer[]): Promise<Buffer>;
  /**
   * Seal migration, first half: the root key, and the key the shares rebuild (Shamir: the unseal key; an auto
   * seal: its recovery key). Throws SealKeyError when the shares do not belong to this store.
   */
  openForMigration(stored: Buffer, keyShares: Buffer[]): Promise<{ rootKey: Buffer; sharesKey: Buffer }>;
  /** Seal migration, second half: the root key wrapped by this seal so that the same shares go on working. */
  wrapForMigration(rootKey: Buffer, sharesKey: Buffer): Promise<Buffer>;
  /** Releases what the seal holds open (an HSM session) when the server stops. */
  close?(): Promise<void>;
}

/** The given key material does not open the root key: a user error, never a crash. */
export class SealKeyError extends Error {}
