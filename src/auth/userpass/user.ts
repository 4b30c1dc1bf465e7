import type { Storage } from '../../core/storage.js';
import { getJson, putJson } from '../../core/storage-view.js';
import { NO_TOKEN_PARAMS, type TokenParams } from '../token-fields.js';
import type { PasswordHash } from './password-hash.js';

/** A user: the token_* parameters of its logins and its password's hash (never shown, never the password). */
export interface UserEntry extends TokenParams {
  password_hash?: PasswordHash;
}

/** Vault's GenericNameRegex: word characters, with dots and dashes inside. Usernames are lowercased, as Vault's. */
export const USERNAME = '(?<username>\\w(?:[\\w.-]*\\w)?)';

export const USER_PREFIX = 'user/';
const userKey = (username: string): string => USER_PREFIX + username.toLowerCase();

export async function readUser(storage: Storage, username: string): Promise<UserEntry | undefined> {
  const stored = await getJson<UserEntry>(storage, userKey(username));
  return stored ? { ...NO_TOKEN_PARAMS, ...stored } : undefined;
}

export async function writeUser(storage: Storage, username: string, user: UserEntry): Promise<void> {
  await putJson(storage, userKey(username), user);
}

export async function deleteUser(storage: Storage, username: string): Promise<void> {
  await storage.delete(userKey(username));
}
