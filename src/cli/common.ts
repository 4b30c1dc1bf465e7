import { InvalidArgumentError, Option } from 'commander';
import type { Command } from 'commander';
import { durationProblemText, readDuration } from '../core/duration.js';
import type { VaultClient } from '../client/client.js';
import { createClient } from './connection.js';
import { resolveFormat } from './format.js';
import { Output } from './output.js';

/** Flags every API command takes (Vault's "HTTP Options"), and the output flags (Vault's "Output Options"). */
export interface CommonFlags {
  address?: string;
  caCert?: string;
  tlsSkipVerify?: boolean;
  /** Response wrapping for the command's requests (Vault's -wrap-ttl). */
  wrapTtl?: string;
  format?: string;
  field?: string;
}

const HTTP = 'HTTP Options:';
const OUTPUT = 'Output Options:';

/** Commands made by `apiCommand` that still need the shared options (and whether they print output). */
const pending = new Map<Command, boolean>();

/**
 * Adds a subcommand that talks to the server. It gets the HTTP options and (unless `output` is false) the output
 * options when `addCommonOptions` runs, after its own options, so --help lists "Options:" first.
 */
export function apiCommand(parent: Command, nameAndArgs: string, description: string, output = true): Command {
  const cmd = parent.command(nameAndArgs).description(description);
  pending.set(cmd, output);
  return cmd;
}

/** Adds the shared options to every command `apiCommand` made (call once the command tree is built). */
export function addCommonOptions(): void {
  for (const [cmd, output] of pending) {
    cmd.addOption(
      new Option(
        '--address <url>',
        'server address (env COFRE_ADDR, VAULT_ADDR; default http://127.0.0.1:8200)',
      ).helpGroup(HTTP),
    );
    cmd.addOption(
      new Option('--ca-cert <path>', 'PEM CA bundle to verify the server (env COFRE_CACERT, VAULT_CACERT)').helpGroup(
        HTTP,
      ),
    );
    cmd.addOption(
      new Option('--tls-skip-verify', 'do not verify the server TLS certificate (insecure)').helpGroup(HTTP),
    );
    cmd.addOption(
      new Option(
        '--wrap-ttl <duration>',
        'wrap the response in a single-use token for this long (env COFRE_WRAP_TTL, VAULT_WRAP_TTL)',
      )
        .argParser(parseDuration)
        .helpGroup(HTTP),
    );
    if (output) {
      cmd.addOption(
        new Option('--format <format>', 'output format: table or json (env COFRE_FORMAT, VAULT_FORMAT)').helpGroup(
          OUTPUT,
        ),
      );
      cmd.addOption(
        new Option('--field <name>', 'print only this field, raw, without a trailing newline').helpGroup(OUTPUT),
      );
    }
  }
  pending.clear();
}

export function clientFrom(flags: CommonFlags, env: NodeJS.ProcessEnv = process.env): VaultClient {
  return createClient(
    { address: flags.address, caCert: flags.caCert, tlsSkipVerify: flags.tlsSkipVerify, wrapTtl: flags.wrapTtl },
    env,
  );
}

export function outputFrom(flags: CommonFlags, env: NodeJS.ProcessEnv = process.env): Output {
  return new Output(resolveFormat(flags.format, env), flags.field || undefined);
}

/** Repeatable flag: `-policy=a -policy=b,c` → ["a", "b", "c"] (Vault's string-slice flags split on commas). */
export function collectList(value: string, previous: string[] = []): string[] {
  return [
    ...previous,
    ...value
      .split(',')
      .map((v) => v.trim())
      .filter(Boolean),
  ];
}

/** Repeatable `k=v` flag (`-metadata`, `-options`, `-custom-metadata`) into a map. */
export function collectMap(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`expected key=value, got "${value}"`);
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

export function parseInteger(value: string): number {
  if (!/^-?\d+$/.test(value.trim())) throw new InvalidArgumentError(`not an integer: "${value}"`);
  return Number(value);
}

/**
 * A duration flag: validated here with the parser the server uses (src/core/duration.ts, so both give the same
 * answer), and sent to the server as written.
 */
export function parseDuration(value: string): string {
  const read = readDuration(value);
  if (!read.ok) {
    const why =
      read.problem === 'syntax' ? 'use e.g. 30s, 5m, 1h30m, 7d or seconds' : durationProblemText(read.problem);
    throw new InvalidArgumentError(`invalid duration "${value}" (${why})`);
  }
  return value.trim();
}

/** Parses `true/false` style values for flags Vault lets you write as `-flag=false`. */
export function parseBool(value: string): boolean {
  const v = value.toLowerCase();
  if (['1', 't', 'true', 'yes'].includes(v)) return true;
  if (['0', 'f', 'false', 'no'].includes(v)) return false;
  throw new InvalidArgumentError(`not a boolean: "${value}"`);
}

/** Vault's sanitizePath: no leading or trailing slashes. */
export function sanitizePath(path: string): string {
  return path.trim().replace(/^\/+/, '').replace(/\/+$/, '');
}

export function ensureTrailingSlash(path: string): string {
  return path === '' || path.endsWith('/') ? path : `${path}/`;
}
