import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { verifyLines, type ChainState } from '../../core/audit-chain.js';
import { apiCommand, clientFrom, outputFrom, sanitizePath } from '../common.js';
import type { CommonFlags } from '../common.js';
import { CliError, silentExit, usageError } from '../errors.js';
import { columns } from '../format.js';
import { stdio } from '../output.js';

interface EnableFlags extends CommonFlags {
  path?: string;
  description?: string;
}

/** `KEY=VALUE` arguments after the device type, as in `vault audit enable file file_path=/var/log/audit.log`. */
function optionArgs(args: string[]): Record<string, string> {
  const options: Record<string, string> = {};
  for (const arg of args) {
    const i = arg.indexOf('=');
    if (i <= 0) throw usageError(`Invalid option "${arg}": expected KEY=VALUE`);
    options[arg.slice(0, i)] = arg.slice(i + 1);
  }
  return options;
}

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('Manage audit devices (enable, disable, list) and verify logs');

  apiCommand(
    audit,
    'enable <type> [options...]',
    'Enable an audit device: file (file_path=PATH|stdout) or socket (address=HOST:PORT)',
    false,
  )
    .option('--path <path>', 'where to enable the device (default: its type)')
    .option('--description <text>', 'a human-friendly description')
    .action(async (type: string, args: string[], flags: EnableFlags) => {
      const path = sanitizePath(flags.path ?? type);
      await clientFrom(flags).write(`sys/audit/${path}`, {
        type,
        description: flags.description ?? '',
        options: optionArgs(args),
      });
      stdio.stdout.write(`Success! Enabled the ${type} audit device at: ${path}/\n`);
    });

  apiCommand(audit, 'disable <path>', 'Disable the audit device at PATH', false).action(
    async (path: string, flags: CommonFlags) => {
      await clientFrom(flags).delete(`sys/audit/${sanitizePath(path)}`);
      stdio.stdout.write(`Success! Disabled audit device (if it was enabled) at: ${sanitizePath(path)}/\n`);
    },
  );

  apiCommand(audit, 'list', 'List the enabled audit devices (exit code 2 when there are none)').action(
    async (flags: CommonFlags) => {
      const output = outputFrom(flags);
      const secret = await clientFrom(flags).read('sys/audit');
      const data = (secret?.data ?? {}) as Record<string, { type?: string; description?: string }>;
      if (output.field) return output.printField(data[output.field]);
      if (output.json) return output.printJson(data);
      // As Vault: a `Path  Type  Description` table, or a notice and exit code 2 when no device is enabled.
      const paths = Object.keys(data).sort();
      if (paths.length === 0) {
        output.out('No audit devices are enabled.');
        throw silentExit(2);
      }
      const head = ['Path', 'Type', 'Description'];
      const rows = paths.map((p) => [p, data[p]?.type ?? '', data[p]?.description ?? '']);
      output.out(columns([head, head.map((h) => '-'.repeat(h.length)), ...rows]));
    },
  );

  audit
    .command('verify <files...>')
    .description(
      "Check an audit log's hash chain: finds an edited, removed or reordered line. Several files are checked as " +
        'one log, oldest first (a log and the files it was rotated into: each must continue the one before)',
    )
    .option('--continued', 'the first file continues an earlier (rotated) log: do not require it to start the chain')
    .action((files: string[], flags: { continued?: boolean }) => {
      let after: ChainState | undefined;
      let total = 0;
      for (const [i, file] of files.entries()) {
        let text: string;
        try {
          text = readFileSync(file, 'utf8');
        } catch (err) {
          throw new CliError(`Error reading ${file}: ${(err as Error).message}`);
        }
        const result = verifyLines(text.split('\n'), {
          continued: i === 0 && flags.continued === true,
          ...(after ? { after } : {}),
        });
        if (!result.ok) {
          const where = files.length > 1 ? `${file}: ` : '';
          stdio.stderr.write(`FAILED at ${where}line ${result.problem!.line}: ${result.problem!.reason}\n`);
          throw silentExit(1);
        }
        total += result.lines;
        after = result.last ?? after;
      }
      const what = files.length > 1 ? ` in ${files.length} files` : '';
      stdio.stdout.write(`OK: ${total} lines${what}, hash chain intact\n`);
    });
}
