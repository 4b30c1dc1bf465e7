import type { Command, Option } from 'commander';

/**
 * Vault-style flags for commander.
 *
 * Vault's CLI parses flags with Go's `flag` package: long flags take a single dash (`-format=json`, `-field x`,
 * `-mount=secret`) and booleans may be written `-flag=true` / `-flag=false`. Commander only understands `--long` and
 * single-letter `-s` flags (it would read `-format=json` as `-f ormat=json`), so before parsing, `normaliseArgv`
 * rewrites the arguments:
 *
 * - `-name` / `-name=value` becomes `--name` / `--name=value` when `name` is a long option of the command being
 *   invoked (or of a parent command), found by walking the subcommand names in the arguments; `-help` → `--help`;
 * - a boolean flag written `--flag=true` becomes `--flag`, and `--flag=false` becomes `--no-flag` when the command
 *   declares that negation, or is dropped (booleans default to false);
 * - the value of `-name value` (space separated) is passed through untouched, as is everything after `--`,
 *   the stdin marker `-`, negative numbers, single-letter flags and unknown flags (commander reports those).
 */
export function normaliseArgv(args: readonly string[], program: Command): string[] {
  const out: string[] = [];
  let cmd = program;
  let flags = longFlags([program]);
  const chain = [program];
  let operandSeen = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--') {
      out.push(...args.slice(i));
      break;
    }
    const m = /^(--?)([A-Za-z][\w.-]*)(?:=([\s\S]*))?$/.exec(arg);
    if (!m) {
      const sub = operandSeen ? undefined : findSubcommand(cmd, arg);
      if (sub) {
        cmd = sub;
        chain.push(sub);
        flags = longFlags(chain);
      } else {
        operandSeen = true;
      }
      out.push(arg);
      continue;
    }
    const [, dashes, name = '', value] = m;
    if (dashes === '-' && name.length === 1) {
      // A short flag: keep it, and its value if it takes one.
      out.push(arg);
      const short = findShort(chain, `-${name}`);
      if (short?.required && value === undefined && i + 1 < args.length) out.push(args[++i] as string);
      continue;
    }
    if (name === 'help') {
      out.push('--help');
      continue;
    }
    const option = flags.get(name);
    if (!option) {
      out.push(arg);
      continue;
    }
    const isBoolean = !option.required && !option.optional;
    if (isBoolean && value !== undefined) {
      const bool = parseBoolWord(value);
      if (bool === true) out.push(`--${name}`);
      else if (bool === false) {
        if (flags.has(`no-${name}`)) out.push(`--no-${name}`);
      } else out.push(`--${name}=${value}`);
      continue;
    }
    out.push(value === undefined ? `--${name}` : `--${name}=${value}`);
    if (option.required && value === undefined && i + 1 < args.length) out.push(args[++i] as string);
  }
  return out;
}

function parseBoolWord(value: string): boolean | undefined {
  const v = value.toLowerCase();
  if (['1', 't', 'true', 'yes'].includes(v)) return true;
  if (['0', 'f', 'false', 'no'].includes(v)) return false;
  return undefined;
}

function findSubcommand(cmd: Command, name: string): Command | undefined {
  return cmd.commands.find((c) => c.name() === name || c.aliases().includes(name));
}

/** Long option names (without dashes) of the commands in the chain; the innermost command wins. */
function longFlags(chain: Command[]): Map<string, Option> {
  const map = new Map<string, Option>();
  for (const cmd of chain) {
    for (const option of cmd.options) {
      if (option.long) map.set(option.long.replace(/^--/, ''), option);
    }
  }
  return map;
}

function findShort(chain: Command[], short: string): Option | undefined {
  for (let i = chain.length - 1; i >= 0; i--) {
    const found = chain[i]?.options.find((o) => o.short === short);
    if (found) return found;
  }
  return undefined;
}
