import { randomBytes, timingSafeEqual } from 'node:crypto';
import { combine, split } from 'shamir-secret-sharing';
import { SealKeyError, type Seal, type WrappedRootKey } from '../core/seal.js';
import { Pkcs11Device, Pkcs11SealError, type Pkcs11DeviceConfig } from './pkcs11-device.js';

/** The additional data binds each wrapped key to its role, so the two stored blobs cannot be swapped. */
const ROOT_AAD = Buffer.from('cofre/pkcs11/root-key');
const RECOVERY_AAD = Buffer.from('cofre/pkcs11/recovery-key');

/** What the core stores beside the barrier for this seal: both keys as the HSM wrapped them, nothing else. */
interface StoredWrapping {
  seal: 'pkcs11';
  mechanism: 'CKM_AES_GCM';
  key_label: string;
  root: { iv: string; ciphertext: string };
  recovery: { iv: string; ciphertext: string };
}

const b64 = (b: Buffer): string => b.toString('base64');

/**
 * The PKCS#11 (HSM) seal, as Vault's: the root key is encrypted by an AES key that never leaves the HSM
 * (CKM_AES_GCM), so the server unseals itself whenever it can reach the HSM. The operators get recovery keys
 * instead of unseal keys: Shamir shares of a random recovery key, which the HSM also wraps. A threshold of them
 * authorises what key shares authorise with the Shamir seal (sys/generate-root, sys/rekey, sys/unseal after
 * sys/seal), but they can open nothing without the HSM: the recovery key only proves the operators' quorum.
 */
export class Pkcs11Seal implements Seal {
  readonly type = 'pkcs11';
  readonly autoUnseal = true;

  constructor(private readonly device: Pkcs11Device) {}

  /** Opens a session and finds (or makes) the key; throws Pkcs11SealError saying where and why. */
  static open(config: Pkcs11DeviceConfig): Pkcs11Seal {
    return new Pkcs11Seal(Pkcs11Device.open(config));
  }

  async wrapRootKey(rootKey: Buffer, shares: number, threshold: number): Promise<WrappedRootKey> {
    const recoveryKey = randomBytes(32);
    // One share is the recovery key itself (the library needs two or more), as with the Shamir seal.
    const keyShares =
      shares === 1
        ? [recoveryKey]
        : (await split(new Uint8Array(recoveryKey), shares, threshold)).map((s) => Buffer.from(s));
    return { stored: this.wrap(rootKey, recoveryKey), keyShares };
  }

  private wrap(rootKey: Buffer, recoveryKey: Buffer): Buffer {
    const root = this.device.encrypt(rootKey, ROOT_AAD);
    const recovery = this.device.encrypt(recoveryKey, RECOVERY_AAD);
    const stored: StoredWrapping = {
      seal: 'pkcs11',
      mechanism: 'CKM_AES_GCM',
      key_label: this.device.keyLabel,
      root: { iv: b64(root.iv), ciphertext: b64(root.ciphertext) },
      recovery: { iv: b64(recovery.iv), ciphertext: b64(recovery.ciphertext) },
    };
    return Buffer.from(JSON.stringify(stored));
  }

  /**
   * Without shares: auto-unseal, the HSM alone. With shares: they must rebuild the recovery key the HSM wrapped,
   * or SealKeyError; the root key still comes from the HSM.
   */
  async unwrapRootKey(stored: Buffer, keyShares: Buffer[]): Promise<Buffer> {
    if (keyShares.length === 0) return this.open(parseWrapping(stored).root, ROOT_AAD);
    return (await this.openForMigration(stored, keyShares)).rootKey;
  }

  async openForMigration(stored: Buffer, keyShares: Buffer[]): Promise<{ rootKey: Buffer; sharesKey: Buffer }> {
    const wrapping = parseWrapping(stored);
    let candidate: Uint8Array;
    try {
      candidate = keyShares.length === 1 ? keyShares[0]! : await combine(keyShares.map((k) => new Uint8Array(k)));
    } catch {
      throw new SealKeyError('the recovery key shares do not combine into a recovery key');
    }
    const recoveryKey = this.open(wrapping.recovery, RECOVERY_AAD);
    if (candidate.length !== recoveryKey.length || !timingSafeEqual(candidate, recoveryKey)) {
      throw new SealKeyError('invalid key: the recovery keys given do not match this server');
    }
    return { rootKey: this.open(wrapping.root, ROOT_AAD), sharesKey: recoveryKey };
  }

  /** The unseal key of the seal migrated from becomes the recovery key, so its shares go on working, as in Vault. */
  async wrapForMigration(rootKey: Buffer, sharesKey: Buffer): Promise<Buffer> {
    return this.wrap(rootKey, sharesKey);
  }

  async close(): Promise<void> {
    this.device.close();
  }

  private open(part: { iv: string; ciphertext: string }, aad: Buffer): Buffer {
    return this.device.decrypt(Buffer.from(part.iv, 'base64'), Buffer.from(part.ciphertext, 'base64'), aad);
  }
}

function parseWrapping(stored: Buffer): StoredWrapping {
  let parsed: Partial<StoredWrapping> | undefined;
  try {
    parsed = JSON.parse(stored.toString('utf8')) as Partial<StoredWrapping>;
  } catch {
    parsed = undefined;
  }
  if (parsed?.seal !== 'pkcs11' || !parsed.root || !parsed.recovery) {
    throw new Pkcs11SealError(
      'PKCS#11 seal: the stored root key was not wrapped by a PKCS#11 seal (the store was sealed with another ' +
        'seal: see seal migration in docs/operations.md)',
    );
  }
  return parsed as StoredWrapping;
}
