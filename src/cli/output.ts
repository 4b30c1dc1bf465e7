import type { Secret } from '../client/wire.js';
import { CliError } from './errors.js';
import {
  extractField,
  keyValueTable,
  listTable,
  mapTable,
  rawField,
  secretTable,
  toJson,
  warningsText,
} from './format.js';
import type { Format } from './format.js';

export interface Streams {
  stdout: { write(text: string): unknown; isTTY?: boolean };
  stderr: { write(text: string): unknown };
}

/** The streams commands write to (tests swap them to capture output). */
export const stdio: Streams = { stdout: process.stdout, stderr: process.stderr };

/**
 * Where a command's results go: `-field=NAME` wins over everything (raw value, no trailing newline unless stdout
 * is a terminal, as Vault), then `-format=json`, then Vault's tables. Warnings and notices go to stderr.
 */
export class Output {
  constructor(
    readonly format: Format,
    readonly field: string | undefined,
    private readonly io: Streams = stdio,
  ) {}

  get json(): boolean {
    return this.format === 'json';
  }

  out(text: string): void {
    if (text !== '') this.io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  err(text: string): void {
    if (text !== '') this.io.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  /** "Success! ..." lines: only in table format, so `-format=json` output stays parseable. */
  success(message: string): void {
    if (!this.json) this.out(message);
  }

  printJson(value: unknown): void {
    this.io.stdout.write(toJson(value));
  }

  /** Prints one raw value for `-field`; a missing field is an error (exit 1). */
  printField(value: unknown, field = this.field ?? ''): void {
    if (value === undefined || value === null) throw new CliError(`Field "${field}" not present in secret`, 1);
    const text = rawField(value, this.format);
    this.io.stdout.write(this.io.stdout.isTTY ? `${text}\n` : text);
  }

  /** A whole response, as `vault read`/`vault write` print it. */
  secret(secret: Secret): void {
    if (this.field) return this.printField(extractField(secret, this.field));
    if (this.json) return this.printJson(secret);
    this.out(secretTable(secret));
    this.warnings(secret.warnings);
  }

  /**
   * A wrapped response (-wrap-ttl) is printed as a whole response, whatever the command would make of the answer
   * (there is none, only wrap_info), as Vault's CLI does; true when it was one.
   */
  wrapped(secret: Secret | null | undefined): boolean {
    if (!secret?.wrap_info) return false;
    this.secret(secret);
    return true;
  }

  /** A plain map (a `Key    Value` table), or `jsonValue` under `-format=json`. */
  map(data: Record<string, unknown>, jsonValue: unknown = data): void {
    if (this.field) return this.printField(data[this.field]);
    if (this.json) return this.printJson(jsonValue);
    this.out(mapTable(data));
  }

  /** Rows printed in the given order (e.g. seal status). */
  rows(rows: [string, string][], jsonValue: unknown, header = true): void {
    if (this.field) {
      const source = (jsonValue ?? {}) as Record<string, unknown>;
      return this.printField(source[this.field]);
    }
    if (this.json) return this.printJson(jsonValue);
    this.out(keyValueTable(rows, header));
  }

  /** `vault list` output: a `Keys` column, or the JSON array of keys. */
  list(keys: string[]): void {
    if (this.json) return this.printJson(keys);
    this.out(listTable(keys));
  }

  warnings(warnings: string[] | null | undefined): void {
    this.err(warningsText(warnings));
  }
}
