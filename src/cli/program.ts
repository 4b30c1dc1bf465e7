import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { normaliseArgv } from './argv.js';
import { ApiError, ClientError } from '../client/errors.js';
import { registerAuditCommands } from './commands/audit.js';
import { registerGenericCommands } from './commands/generic.js';
import { registerKvCommands } from './commands/kv.js';
import { registerLeaseCommands } from './commands/lease.js';
import { registerLoginCommand } from './commands/login.js';
import { registerOperatorCommands } from './commands/operator.js';
import { registerPathHelpCommand } from './commands/path-help.js';
import { registerSnapshotCommands } from './commands/snapshot.js';
import { registerPolicyCommands } from './commands/policy.js';
import { registerClusterCommands } from './commands/cluster.js';
import { registerDeliveryCommands } from './commands/delivery.js';
import { registerPlacementCommands } from './commands/placement.js';
import { registerAuthCommands, registerSecretsCommands } from './commands/secrets.js';
import { registerStatusCommand } from './commands/status.js';
import { registerTokenCommands } from './commands/token.js';
import { registerUnwrapCommand } from './commands/unwrap.js';
import { addCommonOptions } from './common.js';
import { CliError } from './errors.js';
import { warningsText } from './format.js';
import { stdio } from './output.js';

export interface ErrorStream {
  write(text: string): unknown;
}

/** The version in package.json (two levels up from both src/cli and dist/cli). */
export function cliVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** The `cofre` program with every client command group (the `server` command is added by main.ts). */
export function buildProgram(): Command {
  const program = new Command('cofre')
    .description('Cofre: a Vault-compatible secrets server, and its command-line client')
    .version(cliVersion(), '-v, --version', 'print the version')
    // Program options only before the subcommand, so `kv get -version=2` reaches kv get.
    .enablePositionalOptions();
  program.addHelpText(
    'after',
    '\nFlags may be written Vault-style with one dash (-format=json, -field=token).\n' +
      'Environment: COFRE_ADDR / VAULT_ADDR, COFRE_TOKEN / VAULT_TOKEN, COFRE_CACERT / VAULT_CACERT,\n' +
      'COFRE_FORMAT / VAULT_FORMAT, COFRE_TOKEN_FILE (token helper file, default ~/.vault-token).',
  );
  registerStatusCommand(program);
  registerOperatorCommands(program);
  registerSnapshotCommands(program.commands.find((c) => c.name() === 'operator')!);
  registerLoginCommand(program);
  registerGenericCommands(program);
  registerKvCommands(program);
  registerLeaseCommands(program);
  registerTokenCommands(program);
  registerPolicyCommands(program);
  registerClusterCommands(program);
  registerDeliveryCommands(program);
  registerPlacementCommands(program);
  registerSecretsCommands(program);
  registerAuthCommands(program);
  registerAuditCommands(program);
  registerPathHelpCommand(program);
  registerUnwrapCommand(program);
  addCommonOptions();
  return program;
}

function eachCommand(cmd: Command, fn: (c: Command) => void): void {
  fn(cmd);
  for (const sub of cmd.commands) eachCommand(sub, fn);
}

/** Maps an error to its exit code, printing `Error: ...` (the server's `errors` included) to stderr. */
export function reportError(err: unknown, stderr: ErrorStream = stdio.stderr): number {
  if (err instanceof CommanderError) {
    // Commander already printed the message or the help: 0 for --help/--version, 2 for usage errors.
    return err.exitCode === 0 ? 0 : 2;
  }
  if (err instanceof CliError) {
    if (err.message) stderr.write(err.plain ? `${err.message}\n` : `Error: ${err.message}\n`);
    return err.exitCode;
  }
  // The API client's errors (the server could not be reached, or answered an error): exit code 1, as Vault's CLI.
  if (err instanceof ClientError) {
    stderr.write(`Error: ${err.message}\n`);
    if (err instanceof ApiError) stderr.write(warningsText(err.secret?.warnings));
    return 1;
  }
  stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
  return 1;
}

/**
 * Parses and runs a command line (without the node and script arguments). Resolves to the exit code:
 * 0 success, 1 API or runtime error, 2 usage error (or, as in Vault, "not found" and a sealed `status`).
 */
export async function run(program: Command, args: readonly string[]): Promise<number> {
  eachCommand(program, (c) => {
    c.exitOverride();
    c.showHelpAfterError('(add --help for usage)');
    c.configureOutput({ writeOut: (s) => stdio.stdout.write(s), writeErr: (s) => stdio.stderr.write(s) });
  });
  try {
    await program.parseAsync(normaliseArgv(args, program), { from: 'user' });
    return 0;
  } catch (err) {
    return reportError(err);
  }
}
