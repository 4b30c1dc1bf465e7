import type { Command } from 'commander';
import type { Secret, SecretAuth } from '../../client/wire.js';
import { apiCommand, clientFrom, outputFrom } from '../common.js';
import type { CommonFlags } from '../common.js';
import { usageError } from '../errors.js';
import { parseKeyValues, promptSecret } from '../input.js';
import { LOGIN_METHODS } from '../login-methods.js';
import { storeToken } from '../token-helper.js';

interface LoginFlags extends CommonFlags {
  method: string;
  path?: string;
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
  apiCommand(
    program,
    'login [args...]',
    'Authenticate (a token, or an auth method) and store the token in the token helper',
  )
    .option('--method <method>', `auth method: token, ${Object.keys(LOGIN_METHODS).join(', ')}`, 'token')
    .option('--path <path>', 'where the auth method is mounted (default: the method name)')
    .option('--no-store', 'do not store the token in the token helper')
    .option('--no-print', 'do not print the token information (the token is still stored)')
    .addHelpText(
      'after',
      '\nWith the token method, TOKEN is the only argument; without it (or with "-") it is prompted for, or read\n' +
        'from stdin. Other methods take key=value arguments:\n' +
        Object.entries(LOGIN_METHODS)
          .map(([name, m]) => `  -method=${name} ${m.usage}\n`)
          .join('') +
        '\nThe token helper file is ~/.vault-token, or $COFRE_TOKEN_FILE.\n\nExamples:\n  $ cofre login s.abc123\n' +
        '  $ cofre login -method=userpass username=alice\n  $ cofre login -method=approle role_id=... secret_id=...',
    )
    .action(async (args: string[], flags: LoginFlags) => {
      const client = clientFrom(flags);
      const output = outputFrom(flags);
      let secret: Secret;
      if (flags.method === 'token') {
        if (args.length > 1) throw usageError('Too many arguments: the token method takes one token');
        const tokenArg = args[0];
        const token = tokenArg && tokenArg !== '-' ? tokenArg : await promptSecret('Token (will be hidden): ');
        if (!token) throw usageError('Missing token');
        const res = (await client.request('GET', 'auth/token/lookup-self', {
          token,
          what: 'looking up the token',
          wrap: false,
        })) as Secret | null;
        secret = { ...(res ?? {}), data: null, auth: authFromLookup(token, res?.data ?? {}) };
      } else {
        const method = Object.hasOwn(LOGIN_METHODS, flags.method) ? LOGIN_METHODS[flags.method] : undefined;
        if (!method) {
          throw usageError(
            `Unsupported auth method "${flags.method}" (supported: token, ${Object.keys(LOGIN_METHODS).join(', ')})`,
          );
        }
        const mount = (flags.path ?? flags.method).replace(/^\/+|\/+$/g, '');
        const call = await method.call(await parseKeyValues(args));
        const res = (await client.request('POST', `auth/${mount}/${call.path}`, {
          token: '',
          body: call.body,
          what: `logging in with the ${flags.method} method at auth/${mount}`,
        })) as Secret | null;
        // A wrapped login (-wrap-ttl) hands out no token here: nothing is stored, the wrap_info is printed.
        if (output.wrapped(res)) return;
        if (!res?.auth?.client_token)
          throw usageError(`The server answered the login at auth/${mount} without a token`);
        secret = res;
      }
      const token = secret.auth!.client_token;
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
