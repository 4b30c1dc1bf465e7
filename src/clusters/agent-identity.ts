import { createHash, createPublicKey, verify } from 'node:crypto';
import { badRequest, CofreError, permissionDenied } from '../core/errors.js';

/** How far an agent's login timestamp may be from the server's clock. */
export const LOGIN_WINDOW_MS = 60_000;
/** Nonces remembered at most; beyond, logins are refused until the oldest leave the window (bounded memory). */
const MAX_NONCES = 200_000;
/** An agent logs in once per token lifetime (minutes): a thousand a minute is a loop, or a stolen key. */
const MAX_NONCES_PER_CLUSTER = 1_000;

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

export const fingerprint = (rawBase64url: string): string =>
  createHash('sha256').update(Buffer.from(rawBase64url, 'base64url')).digest('hex');

/** Refuses anything that is not a raw 32-byte Ed25519 public key, base64url. */
export function checkSigningPublicKey(key: string): void {
  const raw = Buffer.from(key, 'base64url');
  if (raw.length !== 32 || raw.toString('base64url') !== key) {
    throw badRequest('"signing_key" must be a raw 32-byte Ed25519 public key, base64url');
  }
  try {
    createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: key }, format: 'jwk' });
  } catch {
    throw badRequest('"signing_key" is not an Ed25519 public key');
  }
}

/** The bytes an agent signs to log in (docs/multi-cluster.md, "Log in"). */
export function loginMessage(clusterId: string, timestamp: string, nonce: string): Buffer {
  return Buffer.from(`cofre-agent-login\n${clusterId}\n${timestamp}\n${nonce}`, 'utf8');
}

export interface LoginProof {
  cluster_id: string;
  timestamp: string;
  nonce: string;
  signature: string;
}

/** Checks a login's freshness before any key is looked up: a stale or malformed proof costs nothing more. */
export function checkFreshness(proof: LoginProof, now = Date.now()): void {
  if (!RFC3339.test(proof.timestamp)) throw badRequest('"timestamp" must be RFC 3339');
  const at = Date.parse(proof.timestamp);
  if (!Number.isFinite(at) || Math.abs(at - now) > LOGIN_WINDOW_MS) {
    throw permissionDenied('login timestamp outside the 60 s window of the server clock');
  }
  const nonce = Buffer.from(proof.nonce, 'base64url');
  if (nonce.length !== 16 || nonce.toString('base64url') !== proof.nonce) {
    throw badRequest('"nonce" must be 16 random bytes, base64url');
  }
}

/** Ed25519 over the login message with the cluster's enrolled key, through node:crypto. */
export function signatureValid(signingKey: string, proof: LoginProof): boolean {
  const signature = Buffer.from(proof.signature, 'base64url');
  if (signature.length !== 64) return false;
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: signingKey }, format: 'jwk' });
  return verify(null, loginMessage(proof.cluster_id, proof.timestamp, proof.nonce), key, signature);
}

/**
 * The nonces of accepted logins, each kept until its timestamp leaves the window (a replay after that is refused
 * by the window itself). Bounded: when full of nonces still in their window, logins wait rather than grow memory.
 */
export class NonceCache {
  private readonly seen = new Map<string, { clusterId: string; expires: number }>();
  /** Live nonces per cluster: one cluster's key cannot fill the cache that every cluster's logins share. */
  private readonly perCluster = new Map<string, number>();

  /** Records the nonce; false if it was used already within the window. */
  claim(clusterId: string, nonce: string, timestampMs: number, now = Date.now()): boolean {
    const key = `${clusterId}:${nonce}`;
    if (this.seen.has(key)) return false;
    // The oldest insertions expire first: drop the expired ones at the head.
    for (const [k, { expires }] of this.seen) {
      if (expires >= now) break;
      this.forget(k);
    }
    if (this.seen.size >= MAX_NONCES) {
      for (const [k, { expires }] of this.seen) if (expires < now) this.forget(k);
      if (this.seen.size >= MAX_NONCES) throw new CofreError(429, 'too many logins in the last minute; try again');
    }
    const count = this.perCluster.get(clusterId) ?? 0;
    if (count >= MAX_NONCES_PER_CLUSTER) {
      throw new CofreError(429, 'too many logins of this cluster in the last minute; try again');
    }
    this.seen.set(key, { clusterId, expires: timestampMs + LOGIN_WINDOW_MS });
    this.perCluster.set(clusterId, count + 1);
    return true;
  }

  private forget(key: string): void {
    const entry = this.seen.get(key);
    if (!entry) return;
    this.seen.delete(key);
    const left = (this.perCluster.get(entry.clusterId) ?? 1) - 1;
    if (left > 0) this.perCluster.set(entry.clusterId, left);
    else this.perCluster.delete(entry.clusterId);
  }
}
