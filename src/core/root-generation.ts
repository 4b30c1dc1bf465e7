import { randomInt, randomUUID } from 'node:crypto';
import type { Core } from './core.js';
import { badRequest, CofreError } from './errors.js';
import { KeyLocks } from './key-locks.js';
import { addKeyShare, checkShareLength } from './key-shares.js';

/**
 * The length of a token this server issues ("cvs." and 24 random bytes in base64url) and so of the one-time
 * password: the new root token is XORed with the OTP byte for byte, as Vault's roottoken.EncodeToken does.
 */
export const ROOT_TOKEN_OTP_LENGTH = 36;
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Vault's GenerateRootStatusResponse, field for field. */
export interface RootGenerationStatus {
  nonce: string;
  started: boolean;
  progress: number;
  required: number;
  complete: boolean;
  encoded_token: string;
  encoded_root_token: string;
  pgp_fingerprint: string;
  otp: string;
  otp_length: number;
}

interface Attempt {
  nonce: string;
  otp: string;
  shares: Buffer[];
}

/**
 * sys/generate-root: a new root token made on the authority of a threshold of unseal key shares, as Vault's
 * generate_root.go. One attempt at a time, held in memory only (a restart or a seal forgets it). The token is
 * handed back only XORed with the attempt's one-time password, so the shares' holders and whoever reads the
 * final answer must meet to use it.
 */
export class RootGeneration {
  private attempt: Attempt | undefined;
  /** One update at a time: two last shares arriving together must not both combine, nor mint two tokens. */
  private readonly lock = new KeyLocks();

  constructor(private readonly core: Core) {}

  async status(otp = ''): Promise<RootGenerationStatus> {
    const config = await this.core.sealConfig();
    return {
      nonce: this.attempt?.nonce ?? '',
      started: this.attempt !== undefined,
      progress: this.attempt?.shares.length ?? 0,
      required: config?.secret_threshold ?? 0,
      complete: false,
      encoded_token: '',
      encoded_root_token: '',
      pgp_fingerprint: '',
      otp,
      otp_length: ROOT_TOKEN_OTP_LENGTH,
    };
  }

  /**
   * Starts an attempt. Without an OTP the server generates one and returns it, once, in this answer (Vault ≥ 1.10);
   * an OTP given by the caller (older clients, `-otp`) must have the token's length.
   */
  async start(opts: { otp?: string; pgpKey?: string }): Promise<RootGenerationStatus> {
    if (opts.pgpKey) throw badRequest('pgp_key is not supported: use the one-time password (otp) instead');
    const given = opts.otp ?? '';
    if (given !== '' && given.length !== ROOT_TOKEN_OTP_LENGTH) throw badRequest('OTP string is wrong length');
    if (this.attempt) throw badRequest('root generation already in progress');
    const otp = given || randomBase62(ROOT_TOKEN_OTP_LENGTH);
    this.attempt = { nonce: randomUUID(), otp, shares: [] };
    return this.status(given === '' ? otp : '');
  }

  cancel(): void {
    this.attempt = undefined;
  }

  /** One key share. At the threshold the shares must rebuild the root key; then the new token is minted. */
  update(key: Buffer, nonce: string): Promise<RootGenerationStatus> {
    return this.lock.run('update', async () => {
      checkShareLength(key);
      const config = await this.core.sealConfig();
      if (!config) throw badRequest('Vault is not initialized');
      const attempt = this.attempt;
      if (!attempt) throw badRequest('no root generation in progress');
      if (nonce !== attempt.nonce) {
        throw badRequest(`incorrect nonce supplied; nonce for this root generation operation is "${attempt.nonce}"`);
      }
      addKeyShare(attempt.shares, key, 'given key has already been provided during this generation operation');
      const progress = attempt.shares.length;
      // Vault's update answer: started, the nonce given, no OTP and no otp_length.
      const base: RootGenerationStatus = {
        ...(await this.status()),
        started: true,
        nonce,
        progress,
        required: config.secret_threshold,
        otp_length: 0,
      };
      if (progress < config.secret_threshold) return base;

      // As Vault: the shares are forgotten whatever comes next; a wrong set leaves the attempt (and its nonce)
      // started with no progress, for the operators to try again.
      const shares = attempt.shares.splice(0);
      if (!(await this.core.wrappedRootKeyOpenedBy(shares))) {
        throw badRequest('root generation aborted: the key shares do not rebuild the root key of this server');
      }
      const { token } = await this.core.tokens.create({
        policies: ['root'],
        displayName: 'root',
        ttl: 0,
        parentHash: '',
        path: 'auth/token/root',
      });
      let encoded: string;
      try {
        encoded = encodeToken(token, attempt.otp);
      } catch (err) {
        await this.core.tokens.revokeTree(this.core.tokens.hashOf(token));
        throw err;
      }
      this.attempt = undefined;
      return { ...base, complete: true, encoded_token: encoded, encoded_root_token: encoded };
    });
  }
}

/** base64 (without padding) of token XOR otp, byte for byte: what `vault operator generate-root -decode` reverses. */
export function encodeToken(token: string, otp: string): string {
  const t = Buffer.from(token, 'utf8');
  const o = Buffer.from(otp, 'utf8');
  if (t.length !== o.length) throw new CofreError(500, 'the root token and the OTP differ in length');
  return Buffer.from(t.map((byte, i) => byte ^ o[i]!))
    .toString('base64')
    .replace(/=+$/, '');
}

/** Uniform over the 62 characters: crypto.randomInt rejects the biased tail, no modulo bias. */
function randomBase62(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += BASE62[randomInt(BASE62.length)];
  return out;
}
