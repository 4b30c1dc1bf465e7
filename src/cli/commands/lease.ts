import type { Command } from 'commander';
import { apiCommand, clientFrom, outputFrom, parseDuration } from '../common.js';
import type { CommonFlags } from '../common.js';
import { notFound, usageError } from '../errors.js';
import { stdio } from '../output.js';

interface RevokeFlags extends CommonFlags {
  prefix?: boolean;
  force?: boolean;
  sync?: boolean;
}

/** `cofre lease lookup|renew|revoke`, as Vault's `vault lease`. */
export function registerLeaseCommands(program: Command): void {
  const lease = program.command('lease').description('Look up, renew and revoke leases of dynamic secrets');

  apiCommand(lease, 'lookup <lease-id>', 'Show a lease: issue and expire times, TTL, failed revocations')
    .addHelpText('after', '\nExample:\n  $ cofre lease lookup database/creds/readonly/2f6a614c-…')
    .action(async (id: string, flags: CommonFlags) => {
      const secret = await clientFrom(flags).write('sys/leases/lookup', { lease_id: id }, 'PUT');
      if (!secret) throw notFound(`No lease found with ID ${id}`);
      outputFrom(flags).secret(secret);
    });

  apiCommand(lease, 'renew <lease-id>', 'Extend a lease (the server may grant less than asked, up to its max TTL)')
    .option(
      '-i, --increment <duration>',
      'requested extension from now, e.g. 1h (default: the lease TTL)',
      parseDuration,
    )
    .action(async (id: string, flags: CommonFlags & { increment?: string }) => {
      const body: Record<string, unknown> = { lease_id: id };
      if (flags.increment !== undefined) body.increment = flags.increment;
      const secret = await clientFrom(flags).write('sys/leases/renew', body, 'PUT');
      if (!secret) throw notFound(`No lease found with ID ${id}`);
      outputFrom(flags).secret(secret);
    });

  apiCommand(lease, 'revoke <lease-id>', 'Revoke a lease (or, with -prefix, every lease under a prefix)', false)
    .option('--prefix', 'treat the argument as a prefix and revoke every lease under it (needs sudo)')
    .option('--force', 'with -prefix: remove the leases even if their secrets cannot be revoked (needs sudo)')
    .option('--sync', 'wait until the secret is revoked (default)')
    .option('--no-sync', 'queue the revocation and return at once')
    .action(async (id: string, flags: RevokeFlags) => {
      if (flags.force && !flags.prefix) throw usageError('-force needs -prefix');
      const client = clientFrom(flags);
      const sync = flags.sync ?? true;
      if (flags.force) await client.write(`sys/leases/revoke-force/${id}`, {}, 'PUT');
      else if (flags.prefix) await client.write(`sys/leases/revoke-prefix/${id}`, { sync }, 'PUT');
      else await client.write('sys/leases/revoke', { lease_id: id, sync }, 'PUT');
      stdio.stdout.write(
        sync || flags.force
          ? `Success! Revoked ${flags.prefix ? 'any leases with prefix' : 'lease'}: ${id}\n`
          : `Success! Revocation of ${id} queued\n`,
      );
    });
}
