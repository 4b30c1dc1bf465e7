import { combine, split } from 'shamir-secret-sharing';
import { newKey, open, seal } from '../core/aead.js';
import { SealKeyError, type Seal, type WrappedRootKey } from '../core/seal.js';

const AAD = Buffer.from('cofre/root-key');

/**
 * Shamir seal, as Vault's: a random unseal key encrypts the root key, and the unseal key is split into shares,
 * any `threshold` of which rebuild it. A wrong or forged share rebuilds a wrong key, which AES-GCM refuses.
 */
export class ShamirSeal implements Seal {
  readonly type = 'shamir';
  readonly autoUnseal = false;

  async wrapRootKey(rootKey: Buffer, shares: number, threshold: number): Promise<WrappedRootKey> {
    const unsealKey = newKey();
    const stored = seal(unsealKey, rootKey, AAD);
    // The library needs at least two shares (and plain Uint8Arrays, not Buffers); one share is the unseal key itself.
    const keyShares =
      shares === 1
        ? [unsealKey]
        : (await split(new Uint8Array(unsealKey), shares, threshold)).map((s) => Buffer.from(s));
    return { stored, keyShares };
  }

  async unwrapRootKey(stored: Buffer, keyShares: Buffer[]): Promise<Buffer> {
    return (await this.openForMigration(stored, keyShares)).rootKey;
  }

  async openForMigration(stored: Buffer, keyShares: Buffer[]): Promise<{ rootKey: Buffer; sharesKey: Buffer }> {
    let unsealKey: Uint8Array;
    try {
      unsealKey = keyShares.length === 1 ? keyShares[0]! : await combine(keyShares.map((k) => new Uint8Array(k)));
    } catch {
      throw new SealKeyError('the key shares do not combine into an unseal key');
    }
    if (unsealKey.length !== 32) throw new SealKeyError('invalid key: wrong length');
    try {
      return { rootKey: open(unsealKey, stored, AAD), sharesKey: Buffer.from(unsealKey) };
    } catch {
      throw new SealKeyError('invalid key: the keys given do not unseal this server');
    }
  }

  /** The recovery key of the seal migrated from becomes the unseal key, so its shares now unseal, as in Vault. */
  async wrapForMigration(rootKey: Buffer, sharesKey: Buffer): Promise<Buffer> {
    return seal(sharesKey, rootKey, AAD);
  }
}
