import type { Command } from 'commander';
import { apiCommand, clientFrom, outputFrom, sanitizePath } from '../common.js';
import type { CommonFlags } from '../common.js';
import { CliError, notFound, usageError } from '../errors.js';
import { defaultSources } from '../input.js';
import { stdio } from '../output.js';

const policyPath = (name: string): string => `sys/policies/acl/${name}`;

/** Policy names are case-insensitive: Vault's CLI lowercases them. */
function checkName(name: string): string {
  const clean = sanitizePath(name).toLowerCase();
  if (clean === '') throw usageError('Missing policy NAME');
  return clean;
}

export function registerPolicyCommands(program: Command): void {
  const policy = program.command('policy').description('Manage ACL policies (write, read, list, delete)');

  apiCommand(policy, 'write <name> <file>', 'Upload an ACL policy from a file, or from stdin with "-"', false)
    .addHelpText(
      'after',
      '\nExamples:\n  $ cofre policy write my-policy ./policy.hcl\n  $ cat p.hcl | cofre policy write p -',
    )
    .action(async (name: string, file: string, flags: CommonFlags) => {
      const client = clientFrom(flags);
      const policyName = checkName(name);
      let rules: string;
      try {
        rules = file === '-' ? await defaultSources.readStdin() : await defaultSources.readFile(file);
      } catch (err) {
        throw new CliError(`Error opening policy file: ${(err as Error).message}`);
      }
      await client.write(policyPath(policyName), { policy: rules }, 'PUT');
      stdio.stdout.write(`Success! Uploaded policy: ${policyName}\n`);
    });

  apiCommand(policy, 'read <name>', 'Print the rules of a policy').action(async (name: string, flags: CommonFlags) => {
    const client = clientFrom(flags);
    const output = outputFrom(flags);
    const policyName = checkName(name);
    const secret = await client.read(policyPath(policyName));
    const rules = secret?.data?.policy;
    if (!secret || typeof rules !== 'string') throw notFound(`No policy named: ${policyName}`);
    if (output.field || output.json) return output.secret(secret);
    output.out(rules);
  });

  apiCommand(policy, 'list', 'List the names of the ACL policies').action(async (flags: CommonFlags) => {
    const client = clientFrom(flags);
    const output = outputFrom(flags);
    const secret = await client.list('sys/policies/acl');
    const keys = secret?.data?.keys;
    const names = Array.isArray(keys) ? keys.map(String) : [];
    if (output.field) return output.secret(secret ?? {});
    if (output.json) return output.printJson(names);
    if (names.length > 0) output.out(names.join('\n'));
  });

  apiCommand(policy, 'delete <name>', 'Delete a policy (tokens that have it lose its permissions)', false).action(
    async (name: string, flags: CommonFlags) => {
      const client = clientFrom(flags);
      const policyName = checkName(name);
      await client.delete(policyPath(policyName));
      stdio.stdout.write(`Success! Deleted policy: ${policyName}\n`);
    },
  );
}
