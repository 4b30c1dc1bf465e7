import { timingSafeEqual } from 'node:crypto';
import { badRequest } from './errors.js';

/** A 32-byte unseal key, or one Shamir share of it (the key and one byte of x coordinate), as Vault bounds them. */
const MIN_SHARE_BYTES = 16;
const MAX_SHARE_BYTES = 33;

/** Vault's length check on a submitted key share, before it is kept anywhere. */
export function checkShareLength(key: Buffer): void {
  if (key.length < MIN_SHARE_BYTES) throw badRequest(`key is shorter than minimum ${MIN_SHARE_BYTES} bytes`);
  if (key.length > MAX_SHARE_BYTES) throw badRequest(`key is longer than maximum ${MAX_SHARE_BYTES} bytes`);
}

/** Adds a share to an attempt's progress, refusing one already given (compared in constant time). */
export function addKeyShare(progress: Buffer[], key: Buffer, duplicateMessage: string): void {
  if (progress.some((s) => s.length === key.length && timingSafeEqual(s, key))) throw badRequest(duplicateMessage);
  progress.push(key);
}
