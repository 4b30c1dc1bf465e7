import crypto from 'node:crypto';
import { badRequest, CofreError } from '../../core/errors.js';

/**
 * Passwords of the userpass method, stored only as a slow salted hash: scrypt (node:crypto, OpenSSL's) with a
 * random salt per hash. The parameters are stored with each hash, so that they can be raised later: a hash keeps
 * verifying with the parameters it was made with, and a login rehashes it with the current ones.
 */
export interface PasswordHash {
  algorithm: 'scrypt';
  /** scrypt's cost (N), block size (r) and parallelization (p). */
  n: number;
  r: number;
  p: number;
  /** Base64. */
  salt: string;
  /** Base64; its length is the derived key's. */
  hash: string;
}

/**
 * OWASP's scrypt setting of 32 MiB of memory (N=2^15, r=8, p=3): the same work as its N=2^17, p=1, with a quarter
 * of the memory per login.
 */
export const CURRENT_PARAMS = { n: 2 ** 15, r: 8, p: 3 } as const;
const KEY_BYTES = 32;
const SALT_BYTES = 16;

/** Longer passwords are refused rather than hashed: an unauthenticated login must not choose what it costs. */
export const MAX_PASSWORD_BYTES = 1024;

/** scrypt runs on libuv's thread pool, which file I/O shares: a flood of logins may hold only part of it. */
const MAX_CONCURRENT = 2;
/**
 * Hashes waiting for a slot, at most. Each takes tens of milliseconds, so this is a wait of a few seconds at worst;
 * a flood beyond it is refused at once with 429 (as Vault's rate limits answer) instead of queueing without end,
 * holding every request and its password in memory and making every later login wait behind it.
 */
export const MAX_WAITING = 64;
let running = 0;
const waiting: (() => void)[] = [];

async function withSlot<T>(work: () => Promise<T>): Promise<T> {
  if (running >= MAX_CONCURRENT) {
    if (waiting.length >= MAX_WAITING) {
      throw new CofreError(429, 'too many password checks in progress; try again shortly');
    }
    await new Promise<void>((resolve) => waiting.push(resolve));
  } else running++;
  try {
    return await work();
  } finally {
    // The slot passes straight to the next in line, or is given back.
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

function derive(password: string, salt: Buffer, params: { n: number; r: number; p: number }, bytes: number) {
  // scrypt needs about 128 * N * r bytes; allow that with room to spare (the default limit is exactly 32 MiB).
  const maxmem = 128 * params.n * params.r * 2;
  return withSlot(
    () =>
      new Promise<Buffer>((resolve, reject) =>
        crypto.scrypt(password, salt, bytes, { N: params.n, r: params.r, p: params.p, maxmem }, (err, key) =>
          err ? reject(err) : resolve(key),
        ),
      ),
  );
}

/** Refuses a missing or over-long password with a 400 that never shows it. */
export function checkPassword(password: unknown, field = 'password'): string {
  if (typeof password !== 'string' || password === '') throw badRequest(`missing ${field}`);
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) {
    throw badRequest(`"${field}" is longer than ${MAX_PASSWORD_BYTES} bytes`);
  }
  return password;
}

export async function hashPassword(password: string): Promise<PasswordHash> {
  const salt = crypto.randomBytes(SALT_BYTES);
  const key = await derive(password, salt, CURRENT_PARAMS, KEY_BYTES);
  return { algorithm: 'scrypt', ...CURRENT_PARAMS, salt: salt.toString('base64'), hash: key.toString('base64') };
}

/**
 * Whether the password matches the stored hash. Without a stored hash (no such user) the password is hashed all
 * the same, against a random one that nothing matches: a login for a name that does not exist costs what a wrong
 * password costs, so the time taken does not tell which names exist. Digests are compared in constant time.
 */
export async function verifyPassword(password: string, stored: PasswordHash | undefined): Promise<boolean> {
  const target = stored ?? {
    algorithm: 'scrypt',
    ...CURRENT_PARAMS,
    salt: crypto.randomBytes(SALT_BYTES).toString('base64'),
    hash: crypto.randomBytes(KEY_BYTES).toString('base64'),
  };
  if (target.algorithm !== 'scrypt') throw new Error(`unknown password hash algorithm ${String(target.algorithm)}`);
  const expected = Buffer.from(target.hash, 'base64');
  // The derived key has the stored digest's length, which timingSafeEqual requires.
  const actual = await derive(password, Buffer.from(target.salt, 'base64'), target, expected.length);
  const equal = crypto.timingSafeEqual(actual, expected);
  return equal && stored !== undefined;
}

/** A hash made with other parameters than the current ones (weaker, from before they were raised). */
export function needsRehash(stored: PasswordHash): boolean {
  return stored.n !== CURRENT_PARAMS.n || stored.r !== CURRENT_PARAMS.r || stored.p !== CURRENT_PARAMS.p;
}
