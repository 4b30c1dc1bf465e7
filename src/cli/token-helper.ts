import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Vault's default token helper: the token lives in `~/.vault-token`, readable only by its owner.
 * `COFRE_TOKEN_FILE` overrides the path (tests use it so they never touch the real home directory).
 */
export function tokenHelperPath(env: NodeJS.ProcessEnv = process.env): string {
  const override = env.COFRE_TOKEN_FILE;
  if (override) return override;
  return join(env.HOME || homedir(), '.vault-token');
}

/** The stored token, or undefined if there is none. */
export function readStoredToken(env: NodeJS.ProcessEnv = process.env): string | undefined {
  let text: string;
  try {
    text = readFileSync(tokenHelperPath(env), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const token = text.trim();
  return token === '' ? undefined : token;
}

/** Stores the token with mode 0600 (also tightening the mode of a file that already existed). */
export function storeToken(token: string, env: NodeJS.ProcessEnv = process.env): string {
  const path = tokenHelperPath(env);
  writeFileSync(path, token, { mode: 0o600 });
  chmodSync(path, 0o600);
  return path;
}

/** Removes the stored token, if any. */
export function eraseToken(env: NodeJS.ProcessEnv = process.env): void {
  rmSync(tokenHelperPath(env), { force: true });
}
