import type { Command } from 'commander';
import { ApiError, ClientError } from '../../client/errors.js';
import { apiCommand, clientFrom, outputFrom, sanitizePath } from '../common.js';
import type { CommonFlags } from '../common.js';
import { CliError, usageError } from '../errors.js';
import { stdio } from '../output.js';

const WHAT = 'path help';

const SEALED = `Error: the server is sealed.

The "path-help" command requires the server to be unsealed so that the mount
points of the secret engines are known.`;

/**
 * `cofre path-help PATH`, as Vault's: GET /v1/PATH?help=1 prints the path's help text, or with -format=json its
 * OpenAPI document. Failures exit 2 with "Error retrieving help", as Vault's CLI does.
 */
export function registerPathHelpCommand(program: Command): void {
  apiCommand(program, 'path-help <path>', 'Retrieve API help for a path (an engine, auth method or system path)')
    .addHelpText(
      'after',
      '\nThe help of a mount lists its paths; -format=json prints the OpenAPI document instead.\n' +
        'Examples:\n  $ cofre path-help secret/\n  $ cofre path-help secret/data/my-app\n  $ cofre path-help sys/mounts',
    )
    .action(async (rawPath: string, flags: CommonFlags) => {
      const output = outputFrom(flags);
      const path = sanitizePath(rawPath);
      if (path === '') throw usageError('Missing PATH');
      let help: { help?: unknown; openapi?: unknown };
      try {
        help = (await clientFrom(flags).request('GET', path, { query: { help: '1' }, what: WHAT })) as typeof help;
      } catch (err) {
        if (err instanceof ApiError && err.status === 503) throw new CliError(SEALED, 2, true);
        if (!(err instanceof ClientError)) throw err;
        const message = err.message.startsWith(`${WHAT}: `) ? err.message.slice(WHAT.length + 2) : err.message;
        throw new CliError(`Error retrieving help: ${message}`, 2, true);
      }
      if (output.json) return output.printJson(help?.openapi ?? null);
      stdio.stdout.write(`${String(help?.help ?? '')}\n`);
    });
}
