/**
 * How the CLI configures the API client (src/client): the server address, token and CA from flags, the COFRE_* and
 * VAULT_* environment variables and the token helper file (~/.vault-token), and the CLI's own wording of where
 * they came from and of the "Waiting for ..." notice on stderr.
 */
import type { ClientConfig } from '../client/client.js';
import { VaultClient } from '../client/client.js';
import { readStoredToken } from './token-helper.js';

export const DEFAULT_ADDRESS = 'http://127.0.0.1:8200';

/** Where the CLI took the server address from. */
export type AddressSource = '-address' | 'COFRE_ADDR' | 'VAULT_ADDR' | 'default';

export interface ConnectionFlags {
  address?: string;
  caCert?: string;
  tlsSkipVerify?: boolean;
  wrapTtl?: string;
}

/** How the CLI names an address source when the server cannot be reached. */
export function addressOrigin(source: AddressSource): string {
  if (source === 'default') return 'the default address; set VAULT_ADDR, COFRE_ADDR or -address to change it';
  return `address from ${source}`;
}

/** Said after a TLS failure: how to give the CLI a private CA. */
export const CA_HINT = 'for a private CA, give its PEM file with -ca-cert, COFRE_CACERT or VAULT_CACERT';

/** `--address`, else `COFRE_ADDR`, else `VAULT_ADDR`, else http://127.0.0.1:8200; and which one it was. */
export function resolveAddressFrom(
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): { address: string; source: AddressSource } {
  if (flag) return { address: flag, source: '-address' };
  if (env.COFRE_ADDR) return { address: env.COFRE_ADDR, source: 'COFRE_ADDR' };
  if (env.VAULT_ADDR) return { address: env.VAULT_ADDR, source: 'VAULT_ADDR' };
  return { address: DEFAULT_ADDRESS, source: 'default' };
}

export function resolveAddress(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return resolveAddressFrom(flag, env).address;
}

/** `COFRE_TOKEN`, else `VAULT_TOKEN`, else the token helper file. */
export function resolveToken(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.COFRE_TOKEN || env.VAULT_TOKEN || readStoredToken(env);
}

/** `--ca-cert`, else `COFRE_CACERT`, else `VAULT_CACERT`. */
export function resolveCaCert(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return flag || env.COFRE_CACERT || env.VAULT_CACERT || undefined;
}

function truthy(value: string | undefined): boolean {
  return value !== undefined && ['1', 't', 'true', 'yes'].includes(value.toLowerCase());
}

/** Prints the client's "Waiting for ... to answer ..." notice on stderr. */
function slowNotice(message: string): void {
  process.stderr.write(`${message}\n`);
}

export function resolveConfig(flags: ConnectionFlags = {}, env: NodeJS.ProcessEnv = process.env): ClientConfig {
  const { address, source } = resolveAddressFrom(flags.address, env);
  return {
    address,
    addressOrigin: addressOrigin(source),
    caHint: CA_HINT,
    onSlow: slowNotice,
    token: resolveToken(env),
    caCert: resolveCaCert(flags.caCert, env),
    tlsSkipVerify: flags.tlsSkipVerify || truthy(env.COFRE_SKIP_VERIFY ?? env.VAULT_SKIP_VERIFY),
    ...wrapTtlConfig(flags.wrapTtl || env.COFRE_WRAP_TTL || env.VAULT_WRAP_TTL),
  };
}

function wrapTtlConfig(wrapTtl: string | undefined): { wrapTtl?: string } {
  return wrapTtl && wrapTtl.trim() !== '' ? { wrapTtl: wrapTtl.trim() } : {};
}

export function createClient(flags: ConnectionFlags = {}, env: NodeJS.ProcessEnv = process.env): VaultClient {
  return new VaultClient(resolveConfig(flags, env));
}
