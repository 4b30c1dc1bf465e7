import type { Command } from 'commander';
import type { Secret } from '../../client/wire.js';
import { apiCommand, clientFrom, outputFrom } from '../common.js';
import type { CommonFlags } from '../common.js';
import { usageError } from '../errors.js';

/**
 * `cofre unwrap [TOKEN]`, as Vault's: the wrapped response of a wrapping token, once. Without TOKEN the
 * command's own token is the wrapping token; with TOKEN and a token of one's own (logged in), TOKEN is named in
 * the body, as Vault's client does.
 */
export function registerUnwrapCommand(program: Command): void {
  apiCommand(program, 'unwrap [token]', 'Unwrap a wrapped response (a wrapping token works exactly once)')
    .addHelpText(
      'after',
      '\nExamples:\n  $ cofre unwrap cvs.AbCd...\n  $ COFRE_TOKEN=cvs.AbCd... cofre unwrap\n  $ cofre unwrap -field=secret_id cvs.AbCd...',
    )
    .action(async (tokenArg: string | undefined, flags: CommonFlags) => {
      const output = outputFrom(flags);
      const client = clientFrom(flags);
      const wrapping = tokenArg?.trim() ?? '';
      if (wrapping === '' && !client.token) throw usageError('Missing wrapping token: give it, or set COFRE_TOKEN');
      const own = client.token;
      const secret = (await client.request('PUT', 'sys/wrapping/unwrap', {
        body: wrapping !== '' && own && wrapping !== own ? { token: wrapping } : {},
        ...(wrapping !== '' && !own ? { token: wrapping } : {}),
        what: 'unwrapping',
      })) as Secret | null;
      const empty = !secret || (!secret.data && !secret.auth && !secret.wrap_info && !secret.warnings?.length);
      if (empty) return output.success('Successfully unwrapped. There was no data in the wrapped secret.');
      const keys = secret.data?.keys;
      if (
        !output.field &&
        !output.json &&
        !secret.auth &&
        Array.isArray(keys) &&
        Object.keys(secret.data!).length === 1
      ) {
        return output.list(keys.map(String));
      }
      output.secret(secret);
    });
}
