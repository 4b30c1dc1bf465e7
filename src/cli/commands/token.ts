import { Option } from 'commander';
import type { Command } from 'commander';
import type { Secret } from '../../client/wire.js';
import { apiCommand, clientFrom, collectList, collectMap, outputFrom, parseDuration, parseInteger } from '../common.js';
import type { CommonFlags } from '../common.js';
import { notFound, usageError } from '../errors.js';
import { stdio } from '../output.js';

interface CreateFlags extends CommonFlags {
  policy?: string[];
  ttl?: string;
  explicitMaxTtl?: string;
  period?: string;
  renewable?: boolean;
  useLimit?: number;
  orphan?: boolean;
  defaultPolicy: boolean;
  displayName?: string;
  metadata?: Record<string, string>;
  id?: string;
  role?: string;
  type?: string;
}

/** The body of auth/token/create from `token create` flags. */
export function createBody(flags: CreateFlags): Record<string, unknown> {
  const body: Record<string, unknown> = { renewable: flags.renewable ?? true };
  if (flags.policy) body.policies = flags.policy;
  if (flags.ttl !== undefined) body.ttl = flags.ttl;
  if (flags.explicitMaxTtl !== undefined) body.explicit_max_ttl = flags.explicitMaxTtl;
  if (flags.period !== undefined) body.period = flags.period;
  if (flags.useLimit !== undefined) body.num_uses = flags.useLimit;
  if (flags.orphan) body.no_parent = true;
  if (!flags.defaultPolicy) body.no_default_policy = true;
  if (flags.displayName !== undefined) body.display_name = flags.displayName;
  if (flags.metadata) body.meta = flags.metadata;
  if (flags.id !== undefined) body.id = flags.id;
  if (flags.type !== undefined) body.type = flags.type;
  return body;
}

export function registerTokenCommands(program: Command): void {
  const token = program.command('token').description('Create, look up, renew and revoke tokens');

  apiCommand(token, 'create', 'Create a new token (a child of the current token unless -orphan)')
    .option('--policy <name>', 'policy to attach (repeatable, or comma-separated)', collectList)
    .option('--ttl <duration>', 'initial TTL, e.g. 1h (renewable up to the max TTL)', parseDuration)
    .option('--explicit-max-ttl <duration>', 'hard limit on the token lifetime', parseDuration)
    .option('--period <duration>', 'make a periodic token, renewable indefinitely by this much', parseDuration)
    .option('--renewable', 'allow the token to be renewed (default)')
    .option('--no-renewable', 'do not allow the token to be renewed')
    .option('--use-limit <n>', 'number of uses before the token is revoked (0: unlimited)', parseInteger)
    .option('--orphan', 'create the token without a parent, so it outlives its creator')
    .option('--no-default-policy', 'do not attach the "default" policy')
    .option('--display-name <name>', 'a non-sensitive name for the token')
    .option('--metadata <key=value>', 'metadata stored with the token (repeatable)', collectMap)
    .option('--id <id>', 'the token value (requires root)')
    .option('--role <name>', 'create the token against this token role')
    .addOption(new Option('--type <type>', 'token type').choices(['service', 'batch']))
    .addHelpText('after', '\nExample:\n  $ cofre token create -policy=my-policy -ttl=1h')
    .action(async (flags: CreateFlags) => {
      const client = clientFrom(flags);
      const output = outputFrom(flags);
      const path = flags.role ? `auth/token/create/${flags.role}` : 'auth/token/create';
      const secret = await client.write(path, createBody(flags), 'POST');
      if (!secret) throw notFound(`No value found at ${path}`);
      output.secret(secret);
    });

  apiCommand(token, 'lookup [token]', 'Display information about a token (default: the current one)')
    .option('--accessor', 'the argument is a token accessor, not a token')
    .action(async (arg: string | undefined, flags: CommonFlags & { accessor?: boolean }) => {
      const client = clientFrom(flags);
      const output = outputFrom(flags);
      let secret: Secret | null;
      if (flags.accessor) {
        if (!arg) throw usageError('-accessor needs an ACCESSOR argument');
        secret = await client.write('auth/token/lookup-accessor', { accessor: arg }, 'POST');
      } else if (arg) {
        secret = await client.write('auth/token/lookup', { token: arg }, 'POST');
      } else {
        secret = await client.read('auth/token/lookup-self');
      }
      if (!secret) throw notFound('No token information found');
      output.secret(secret);
    });

  apiCommand(token, 'renew [token]', 'Renew a token (default: the current one), extending its TTL')
    .option('-i, --increment <duration>', 'requested extension of the TTL (the server may grant less)', parseDuration)
    .action(async (arg: string | undefined, flags: CommonFlags & { increment?: string }) => {
      const client = clientFrom(flags);
      const output = outputFrom(flags);
      const body: Record<string, unknown> = {};
      if (flags.increment !== undefined) body.increment = flags.increment;
      const secret = arg
        ? await client.write('auth/token/renew', { ...body, token: arg }, 'POST')
        : await client.write('auth/token/renew-self', body, 'POST');
      if (!secret) throw notFound('No token information returned');
      output.secret(secret);
    });

  apiCommand(
    token,
    'revoke [token]',
    'Revoke a token and its children (only the token: -mode=orphan; every token created under a path: -mode=path)',
    false,
  )
    .option('--self', 'revoke the token in use')
    .option('--accessor', 'the argument is a token accessor, not a token')
    .addOption(
      new Option(
        '--mode <mode>',
        'orphan: revoke only this token, its children become orphans; path: the argument is a creation path ' +
          '(e.g. auth/token/create/my-role) and every token created under it is revoked',
      ).choices(['orphan', 'path']),
    )
    .action(
      async (arg: string | undefined, flags: CommonFlags & { self?: boolean; accessor?: boolean; mode?: string }) => {
        const client = clientFrom(flags);
        if (flags.self) {
          if (arg) throw usageError('-self takes no TOKEN argument');
          if (flags.accessor || flags.mode) throw usageError('-self cannot be combined with -accessor or -mode');
          await client.write('auth/token/revoke-self', {}, 'POST');
        } else if (!arg) {
          throw usageError('Missing TOKEN (or use -self)');
        } else if (flags.accessor) {
          if (flags.mode) throw usageError('-accessor cannot be combined with -mode');
          await client.write('auth/token/revoke-accessor', { accessor: arg }, 'POST');
        } else if (flags.mode === 'path') {
          // As Vault's CLI: tokens are leases under their creation path.
          await client.write(`sys/leases/revoke-prefix/${arg.replace(/^\/+/, '')}`, {}, 'PUT');
        } else if (flags.mode === 'orphan') {
          await client.write('auth/token/revoke-orphan', { token: arg }, 'POST');
        } else {
          await client.write('auth/token/revoke', { token: arg }, 'POST');
        }
        stdio.stdout.write('Success! Revoked token (if it existed)\n');
      },
    );
}
