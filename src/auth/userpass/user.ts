import type { Storage } from '../../core/storage.js';
import { changeJson } from '../../core/json-change.js';
import { getJson } from '../../core/storage-view.js';
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

/** A stored user; one written before a token field existed gets that field's default. */
const withDefaults = (stored: UserEntry | undefined): UserEntry | undefined =>
  stored ? { ...NO_TOKEN_PARAMS, ...stored } : undefined;

export async function readUser(storage: Storage, username: string): Promise<UserEntry | undefined> {
  return withDefaults(await getJson<UserEntry>(storage, userKey(username)));
}

/**
 * Changes a user on what is stored when the change commits (changeJson): `change` gets the user as it is then
 * (undefined: none) and returns what to store, or undefined to leave it. Every write of a user goes through here, so
 * that one which read the user before a delete (a password change hashing the new password) does not make it again.
 */
export async function changeUser(
  storage: Storage,
  username: string,
  change: (current: UserEntry | undefined) => Promise<UserEntry | undefined> | UserEntry | undefined,
): Promise<void> {
  await changeJson<UserEntry>(storage, userKey(username), (stored) => change(withDefaults(stored)));
}

export async function deleteUser(storage: Storage, username: string): Promise<void> {
  await storage.delete(userKey(username));
}
