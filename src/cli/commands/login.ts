import type { Command } from 'commander';
import type { Secret, SecretAuth } from '../client.js';
import { apiCommand, clientFrom, outputFrom } from '../common.js';
import type { CommonFlags } from '../common.js';
import { usageError } from '../errors.js';
import { promptSecret } from '../input.js';
import { storeToken } from '../token-helper.js';

interface LoginFlags extends CommonFlags {
  method: string;
  store: boolean;
  print: boolean;
}

/** The token method: turns a lookup-self answer into the auth block Vault's `login` prints. */
export function authFromLookup(token: string, data: Record<string, unknown>): SecretAuth {
  const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);
  return {
    client_token: token,
    accessor: String(data.accessor ?? ''),
    policies: list(data.policies),
    token_policies: list(data.policies),
    identity_policies: list(data.identity_policies),
    metadata: (data.meta as Record<string, string> | null) ?? null,
    lease_duration: Number(data.ttl ?? 0),
    renewable: Boolean(data.renewable),
  };
}

export function registerLoginCommand(program: Command): void {
  apiCommand(program, 'login [token]', 'Authenticate with a token and store it in the token helper (~/.vault-token)')
    .option('--method <method>', 'auth method (only "token" for now)', 'token')
    .option('--no-store', 'do not store the token in the token helper')
    .option('--no-print', 'do not print the token information (the token is still stored)')
    .addHelpText(
      'after',
      '\nWithout TOKEN (or with "-") the token is prompted for, or read from stdin.\n' +
        'The token helper file is ~/.vault-token, or $COFRE_TOKEN_FILE.\n\nExample:\n  $ cofre login s.abc123',
    )
    .action(async (tokenArg: string | undefined, flags: LoginFlags) => {
      if (flags.method !== 'token') throw usageError(`Unsupported auth method "${flags.method}" (only "token")`);
      const client = clientFrom(flags);
      const output = outputFrom(flags);
      const token = tokenArg && tokenArg !== '-' ? tokenArg : await promptSecret('Token (will be hidden): ');
      if (!token) throw usageError('Missing token');
      const res = (await client.request('GET', 'auth/token/lookup-self', {
        token,
        what: 'looking up the token',
      })) as Secret | null;
      const secret: Secret = { ...(res ?? {}), data: null, auth: authFromLookup(token, res?.data ?? {}) };

      if (flags.store) storeToken(token);
      const envVar = process.env.COFRE_TOKEN ? 'COFRE_TOKEN' : process.env.VAULT_TOKEN ? 'VAULT_TOKEN' : undefined;
      if (envVar) {
        output.err(
          `WARNING! The ${envVar} environment variable is set! It takes precedence over the value\n` +
            'set by this command. To use the value set by this command, unset the variable.\n',
        );
      }
      if (!flags.print) return;
      if (output.field || output.json) return output.secret(secret);
      if (flags.store) {
        output.out(
          'Success! You are now authenticated. The token information displayed below\n' +
            'is already stored in the token helper. You do NOT need to run "cofre login"\n' +
            'again. Future requests will automatically use this token.\n\n',
        );
      } else {
        output.out('Success! You are now authenticated. The token was not stored (--no-store).\n\n');
      }
      output.secret(secret);
    });
}
