import { randomUUID } from 'node:crypto';
import type { Core } from './core.js';
import { badRequest } from './errors.js';
import { KeyLocks } from './key-locks.js';
import { addKeyShare, checkShareLength } from './key-shares.js';
import { SealKeyError } from './seal.js';

/** Vault's RekeyStatusResponse. */
export interface RekeyStatus {
  nonce: string;
  started: boolean;
  t: number;
  n: number;
  progress: number;
  required: number;
  pgp_fingerprints: string[] | null;
  backup: boolean;
  verification_required: boolean;
  verification_nonce?: string;
}

/** Vault's RekeyUpdateResponse (the new shares, once the old threshold is met). */
export interface RekeyResult {
  nonce: string;
  complete: true;
  keys: string[];
  keys_base64: string[];
  pgp_fingerprints: string[] | null;
  backup: boolean;
  verification_required: boolean;
  verification_nonce?: string;
}

/** Vault's RekeyVerificationStatusResponse. */
export interface RekeyVerifyStatus {
  nonce: string;
  started: boolean;
  t: number;
  n: number;
  progress: number;
}

interface Attempt {
  nonce: string;
  shares: number;
  threshold: number;
  verificationRequired: boolean;
  /** Old key shares given so far. */
  progress: Buffer[];
  /** With require_verification: the new wrapping, kept in memory until a threshold of new shares proves it. */
  pending?: { stored: Buffer; replacing: Buffer; nonce: string; progress: Buffer[] };
}

/**
 * sys/rekey: new unseal key shares (a new count and threshold if wanted) on the authority of a threshold of the
 * old ones, as Vault's rekey.go. One attempt at a time, in memory only (a seal or restart forgets it).
 *
 * Cofre's rekey replaces the unseal key that wraps the root key; the root key itself, and so the keyring it seals,
 * stays (Vault also draws a new root key: see docs/vault-compatibility.md). That keeps the commit to two entries
 * outside the barrier written in one storage transaction (Core.replaceWrappedRootKey), so a crash at any moment
 * leaves the store openable by the old shares or by the new ones, never by neither. The remaining risk is the
 * operators': without verification the new shares exist only in the answer to the last update, so a crash after
 * the commit but before that answer arrives loses them. `require_verification` closes that gap: the new wrapping
 * is committed only once a threshold of the new shares has come back (sys/rekey/verify); until then the old
 * shares stay the ones that open the store.
 */
export class Rekey {
  private attempt: Attempt | undefined;
  private readonly lock = new KeyLocks();

  constructor(private readonly core: Core) {}

  async status(): Promise<RekeyStatus> {
    const config = await this.core.sealConfig();
    const a = this.attempt;
    return {
      nonce: a?.nonce ?? '',
      started: a !== undefined,
      t: a?.threshold ?? 0,
      n: a?.shares ?? 0,
      progress: a?.progress.length ?? 0,
      required: config?.secret_threshold ?? 0,
      pgp_fingerprints: null,
      backup: false,
      verification_required: a?.verificationRequired ?? false,
      ...(a?.pending ? { verification_nonce: a.pending.nonce } : {}),
    };
  }

  async start(opts: {
    shares: number;
    threshold: number;
    requireVerification: boolean;
    pgpKeys: string[];
    backup: boolean;
  }): Promise<RekeyStatus> {
    if (opts.pgpKeys.length > 0)
      throw badRequest('pgp_keys are not supported: the new key shares are returned in clear');
    if (opts.backup) {
      throw badRequest('cannot request a backup of the new keys without providing PGP keys for encryption');
    }
    const { shares, threshold } = opts;
    if (threshold > shares) throw badRequest('provided threshold greater than the total shares');
    if (shares < 1) throw badRequest('invalid rekey seal configuration: shares must be at least one');
    if (threshold < 1) throw badRequest('invalid rekey seal configuration: threshold must be at least one');
    if (shares > 255) throw badRequest('invalid rekey seal configuration: shares must be less than 256');
    if (shares > 1 && threshold === 1) {
      throw badRequest('invalid rekey seal configuration: threshold must be greater than one for multiple shares');
    }
    if (this.attempt) throw badRequest('rekey already in progress');
    this.attempt = {
      nonce: randomUUID(),
      shares,
      threshold,
      verificationRequired: opts.requireVerification,
      progress: [],
    };
    return this.status();
  }

  cancel(): void {
    this.attempt = undefined;
  }

  /** One old key share; at the old threshold, the new shares (committed now, or after verification). */
  update(key: Buffer, nonce: string): Promise<RekeyStatus | RekeyResult> {
    return this.lock.run('rekey', async () => {
      checkShareLength(key);
      const config = await this.core.sealConfig();
      if (!config) throw badRequest('Vault is not initialized');
      const attempt = this.attempt;
      if (!attempt) throw badRequest('no barrier rekey in progress');
      if (attempt.pending) {
        throw badRequest(
          `rekey operation already finished; verification must be performed; nonce for the verification operation is "${attempt.pending.nonce}"`,
        );
      }
      if (nonce !== attempt.nonce) {
        throw badRequest(`incorrect nonce supplied; nonce for this rekey operation is "${attempt.nonce}"`);
      }
      addKeyShare(attempt.progress, key, 'given key has already been provided during this rekey operation');
      if (attempt.progress.length < config.secret_threshold) return this.status();

      // As Vault: the old shares are forgotten whatever comes next; a wrong set leaves the attempt started.
      const old = attempt.progress.splice(0);
      const replacing = await this.core.wrappedRootKeyOpenedBy(old);
      if (!replacing) {
        throw badRequest('root key verification failed: the key shares do not rebuild the root key of this server');
      }
      const wrapped = await this.core.wrapRootKeyAnew(attempt.shares, attempt.threshold);
      const result: RekeyResult = {
        nonce,
        complete: true,
        keys: wrapped.keyShares.map((k) => k.toString('hex')),
        keys_base64: wrapped.keyShares.map((k) => k.toString('base64')),
        pgp_fingerprints: null,
        backup: false,
        verification_required: attempt.verificationRequired,
      };
      if (attempt.verificationRequired) {
        attempt.pending = { stored: wrapped.stored, replacing, nonce: randomUUID(), progress: [] };
        return { ...result, verification_nonce: attempt.pending.nonce };
      }
      // The new shares are answered only after the commit is durable: an answer never names shares the store
      // does not know.
      await this.core.replaceWrappedRootKey(wrapped.stored, attempt.shares, attempt.threshold, replacing);
      if (this.attempt === attempt) this.attempt = undefined;
      return result;
    });
  }

  verifyStatus(): RekeyVerifyStatus {
    const a = this.attempt;
    if (!a) throw badRequest('no rekey configuration found');
    return {
      nonce: a.pending?.nonce ?? '',
      started: a.pending !== undefined,
      t: a.threshold,
      n: a.shares,
      progress: a.pending?.progress.length ?? 0,
    };
  }

  /** Starts the verification over with a new nonce (DELETE sys/rekey/verify). */
  restartVerification(): RekeyVerifyStatus {
    const pending = this.attempt?.pending;
    if (pending) {
      pending.progress = [];
      pending.nonce = randomUUID();
    }
    return this.verifyStatus();
  }

  /** One NEW key share; at the new threshold, the new wrapping is committed and the old shares stop working. */
  verify(key: Buffer, nonce: string): Promise<RekeyVerifyStatus | { nonce: string; complete: true }> {
    return this.lock.run('rekey', async () => {
      checkShareLength(key);
      const attempt = this.attempt;
      if (!attempt) throw badRequest('no rekey in progress');
      const pending = attempt.pending;
      if (!pending) throw badRequest('no rekey verification in progress');
      if (nonce !== pending.nonce) {
        throw badRequest(`incorrect nonce supplied; nonce for this verify operation is "${pending.nonce}"`);
      }
      addKeyShare(pending.progress, key, 'given key has already been provided during this verify operation');
      if (pending.progress.length < attempt.threshold) return this.verifyStatus();

      const given = pending.progress.splice(0);
      const opened = await this.core.seal.unwrapRootKey(pending.stored, given).then(
        () => true,
        (err: unknown) => {
          if (err instanceof SealKeyError) return false;
          throw err;
        },
      );
      if (!opened) {
        // As Vault: a failed verification starts over under a new nonce.
        pending.nonce = randomUUID();
        throw badRequest('rekey verification failed; incorrect key shares supplied');
      }
      await this.core.replaceWrappedRootKey(pending.stored, attempt.shares, attempt.threshold, pending.replacing);
      if (this.attempt === attempt) this.attempt = undefined;
      return { nonce: pending.nonce, complete: true };
    });
  }
}
