import type { ValueSealer } from './barrier.js';
import { badRequest, permissionDenied } from './errors.js';
import type { NewToken, TokenEntry } from './token-store.js';

/**
 * Batch tokens, as Vault's: never stored. The token is its own entry, sealed by the barrier's keyring (AES-256-GCM,
 * authenticated), so it survives a restart and a key rotation (old terms stay in the keyring) and is refused when
 * altered, truncated or forged. It has no accessor, cannot be renewed or revoked by itself, makes no children and
 * has no use limit; it ends at its TTL, or as soon as its parent (a service token) is revoked: every lookup checks
 * the parent.
 */
export const BATCH_TOKEN_PREFIX = 'cvb.';
/** A batch token carries its entry: longer than a service token, but bounded, so a header stays reasonable. */
export const MAX_BATCH_TOKEN_LENGTH = 4096;
/** The additional data of the seal: no storage path is this, so no stored entry opens as a batch token. */
const CONTEXT = '\u0000cofre/batch-token/v1';

/** What the core lends to batch tokens: the seal, and which mount (by accessor) a creation path is under now. */
export interface BatchIssuing {
  sealer: ValueSealer;
  /**
   * The accessor of the auth mount a path is under, undefined when none is. A batch token outlives no mount: a
   * stored token is revoked when its auth method is disabled, a batch token is refused once its mount is gone (or
   * was mounted again: a new accessor).
   */
  mountAccessorOf(path: string): string | undefined;
}

/** What a batch token carries, in short keys. */
interface Payload {
  p: string; // parent hash, "" for an orphan
  pol: string[];
  path: string;
  m: Record<string, string>;
  dn: string;
  ct: number; // creation time, unix seconds
  ttl: number;
  x: number; // expiry, unix ms
  c?: string[]; // bound CIDR blocks
  r?: string; // role
  a?: string; // accessor of the mount that issued it
}

export const isBatchToken = (token: string): boolean => token.startsWith(BATCH_TOKEN_PREFIX);

/** What the token store lends to batch tokens: the seal, the parent check and the token hash. */
export interface BatchContext extends BatchIssuing {
  /** The live entry of a service token (undefined when revoked, expired, used up or being revoked). */
  lookupByHash(hash: string): Promise<TokenEntry | undefined>;
  hashOf(token: string): string;
}

/** Issues a batch token: TTL resolved by the caller, capped by the parent's expiry; the parent must be live. */
export async function issueBatchToken(
  ctx: BatchContext,
  spec: NewToken,
): Promise<{ token: string; entry: TokenEntry }> {
  if (spec.id !== undefined) throw badRequest('batch tokens cannot have a custom id');
  if (spec.policies.includes('root')) throw badRequest('batch tokens cannot be root tokens');
  if (!(spec.ttl > 0)) throw badRequest('batch tokens must have a TTL');
  const now = Date.now();
  let expireTime = now + spec.ttl * 1000;
  let ttl = spec.ttl;
  if (spec.parentHash) {
    const parent = await ctx.lookupByHash(spec.parentHash);
    if (!parent) throw permissionDenied('permission denied: the parent token is not valid');
    if (parent.expireTime > 0 && parent.expireTime < expireTime) {
      expireTime = parent.expireTime;
      ttl = Math.max(1, Math.floor((expireTime - now) / 1000));
    }
  }
  const payload: Payload = {
    p: spec.parentHash,
    pol: [...new Set(spec.policies)].sort(),
    path: spec.path,
    m: spec.meta ?? {},
    dn: spec.displayName,
    ct: Math.floor(now / 1000),
    ttl,
    x: expireTime,
    ...(spec.boundCidrs && spec.boundCidrs.length > 0 ? { c: spec.boundCidrs } : {}),
    ...(spec.role ? { r: spec.role } : {}),
  };
  const accessor = ctx.mountAccessorOf(spec.path);
  if (accessor !== undefined) payload.a = accessor;
  const sealed = ctx.sealer.encryptValue(CONTEXT, Buffer.from(JSON.stringify(payload), 'utf8'));
  const token = BATCH_TOKEN_PREFIX + sealed.toString('base64url');
  if (token.length > MAX_BATCH_TOKEN_LENGTH) {
    throw badRequest(
      `a batch token carries its policies and metadata and would exceed ${MAX_BATCH_TOKEN_LENGTH} characters`,
    );
  }
  return { token, entry: entryOf(payload, ctx.hashOf(token)) };
}

/**
 * The entry of a valid batch token, or undefined: not sealed by this keyring (tampered, truncated, forged), expired,
 * or its parent is no longer a live token.
 */
export async function lookupBatchToken(ctx: BatchContext, token: string): Promise<TokenEntry | undefined> {
  if (token.length > MAX_BATCH_TOKEN_LENGTH || !isBatchToken(token)) return undefined;
  const body = token.slice(BATCH_TOKEN_PREFIX.length);
  // Node's base64url decoder skips characters it does not know: only a strict encoding is looked at.
  if (!/^[A-Za-z0-9_-]+$/.test(body)) return undefined;
  const sealed = Buffer.from(body, 'base64url');
  // One token, one spelling: the unused bits of the last character must be zero, as this server writes them.
  if (sealed.toString('base64url') !== body) return undefined;
  let payload: unknown;
  try {
    payload = JSON.parse(ctx.sealer.decryptValue(CONTEXT, sealed).toString('utf8'));
  } catch {
    return undefined;
  }
  if (!isPayload(payload)) return undefined;
  if (payload.x <= Date.now()) return undefined;
  if (payload.a !== undefined && ctx.mountAccessorOf(payload.path) !== payload.a) return undefined;
  if (payload.p && !(await ctx.lookupByHash(payload.p))) return undefined;
  return entryOf(payload, ctx.hashOf(token));
}

function entryOf(p: Payload, hash: string): TokenEntry {
  return {
    hash,
    accessor: '',
    parentHash: p.p,
    policies: p.pol,
    meta: p.m,
    displayName: p.dn,
    numUses: 0,
    creationTime: p.ct,
    creationTtl: p.ttl,
    explicitMaxTtl: 0,
    period: 0,
    renewable: false,
    expireTime: p.x,
    path: p.path,
    type: 'batch',
    ...(p.c ? { boundCidrs: p.c } : {}),
    ...(p.r ? { role: p.r } : {}),
  };
}

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

/** Only this server seals payloads, so this is a guard against a bug, not an attacker: still, nothing unchecked. */
function isPayload(v: unknown): v is Payload {
  if (typeof v !== 'object' || v === null) return false;
  const p = v as Record<string, unknown>;
  const meta = p.m as Record<string, unknown> | null;
  return (
    typeof p.p === 'string' &&
    isStrings(p.pol) &&
    typeof p.path === 'string' &&
    typeof meta === 'object' &&
    meta !== null &&
    Object.values(meta).every((s) => typeof s === 'string') &&
    typeof p.dn === 'string' &&
    Number.isInteger(p.ct) &&
    Number.isInteger(p.ttl) &&
    Number.isInteger(p.x) &&
    (p.c === undefined || isStrings(p.c)) &&
    (p.r === undefined || typeof p.r === 'string') &&
    (p.a === undefined || typeof p.a === 'string')
  );
}
