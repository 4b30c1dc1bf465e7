import type { Secret } from '../client/wire.js';
import { usageError } from './errors.js';

/** Formatting as Vault's CLI prints: Go-style `%v` values, human durations and `Key    Value` tables. */

export type Format = 'table' | 'json';
export const FORMATS: readonly Format[] = ['table', 'json'];

/** `--format`, else `COFRE_FORMAT`, else `VAULT_FORMAT`, else table. */
export function resolveFormat(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): Format {
  const value = (flag || env.COFRE_FORMAT || env.VAULT_FORMAT || 'table').toLowerCase();
  if (!(FORMATS as readonly string[]).includes(value)) {
    throw usageError(`Invalid output format: ${value} (expected ${FORMATS.join(' or ')})`);
  }
  return value as Format;
}

/** Go's `fmt.Sprintf("%v", v)` for decoded JSON: `<nil>`, `[a b]`, `map[k:v]` (keys sorted). */
export function goString(value: unknown): string {
  if (value === null || value === undefined) return '<nil>';
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return `[${value.map(goString).join(' ')}]`;
  if (typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .map((k) => `${k}:${goString((value as Record<string, unknown>)[k])}`);
    return `map[${entries.join(' ')}]`;
  }
  return String(value);
}

/** Go's `%q` for a string slice: `["default" "root"]`. */
export function quotedList(value: unknown): string {
  const list = Array.isArray(value) ? value : [];
  return `[${list.map((v) => JSON.stringify(String(v))).join(' ')}]`;
}

/** Whole seconds as Vault prints durations: Go's Duration.String without the zero tails (768h, 1h30m, 45s). */
export function humanDuration(seconds: number): string {
  if (seconds === 0) return '0s';
  const sign = seconds < 0 ? '-' : '';
  let rest = Math.abs(Math.trunc(seconds));
  const h = Math.floor(rest / 3600);
  rest %= 3600;
  const m = Math.floor(rest / 60);
  const s = rest % 60;
  let out = h > 0 ? `${h}h${m}m${s}s` : m > 0 ? `${m}m${s}s` : `${s}s`;
  if (out.endsWith('m0s')) out = out.slice(0, -2);
  out = out.replace('h0m', 'h');
  return sign + out;
}

/** Integers (or integer strings) become human durations; anything else is returned unchanged. */
export function humanDurationValue(value: unknown): unknown {
  if (typeof value === 'number' && Number.isInteger(value)) return humanDuration(value);
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return humanDuration(Number(value));
  return value;
}

/** Fields whose numbers Vault prints as durations. */
export function looksLikeDuration(key: string): boolean {
  return (
    key === 'period' ||
    key.endsWith('_period') ||
    key === 'ttl' ||
    key.endsWith('_ttl') ||
    key.endsWith('_timeout') ||
    key.endsWith('_interval')
  );
}

/**
 * Aligns cells in columns separated by four spaces (Vault's columnize glue); the last column is not padded and
 * empty cells print as "n/a" (columnize's Empty setting in Vault).
 */
export function columns(input: string[][]): string {
  const rows = input.map((row) => row.map((cell) => (cell === '' ? 'n/a' : cell)));
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  const lines = rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('    ')
      .trimEnd(),
  );
  return lines.join('\n') + '\n';
}

/** A `Key    Value` table with its `---    -----` header; empty string if there are no rows. */
export function keyValueTable(rows: [string, string][], header = true): string {
  if (rows.length === 0) return '';
  const head: string[][] = header
    ? [
        ['Key', 'Value'],
        ['---', '-----'],
      ]
    : [];
  return columns([...head, ...rows]);
}

/** The rows of a map, keys sorted, TTL-like fields as durations. */
export function mapRows(data: Record<string, unknown> | null | undefined): [string, string][] {
  if (!data) return [];
  return Object.keys(data)
    .sort()
    .map((k) => [k, goString(looksLikeDuration(k) ? humanDurationValue(data[k]) : data[k])]);
}

export function mapTable(data: Record<string, unknown> | null | undefined): string {
  return keyValueTable(mapRows(data));
}

/** A one-column list with a header, as `vault list` prints (`Keys` / `----`). */
export function listTable(keys: string[], header = 'Keys'): string {
  return columns([[header], ['-'.repeat(header.length)], ...keys.map((k) => [k])]);
}

/** Vault's table for a whole response: lease fields, auth fields, then the data keys. */
export function secretTable(secret: Secret): string {
  const rows: [string, string][] = [];
  const lease = secret.lease_duration ?? 0;
  if (lease > 0) {
    if (secret.lease_id) {
      rows.push(['lease_id', secret.lease_id]);
      rows.push(['lease_duration', humanDuration(lease)]);
      rows.push(['lease_renewable', String(Boolean(secret.renewable))]);
    } else {
      rows.push(['refresh_interval', humanDuration(lease)]);
    }
  }
  const auth = secret.auth;
  if (auth) {
    rows.push(['token', auth.client_token]);
    rows.push(['token_accessor', auth.accessor]);
    rows.push(['token_duration', auth.lease_duration ? humanDuration(auth.lease_duration) : '∞']);
    rows.push(['token_renewable', String(Boolean(auth.renewable))]);
    rows.push(['token_policies', quotedList(auth.token_policies ?? auth.policies)]);
    rows.push(['identity_policies', quotedList(auth.identity_policies)]);
    rows.push(['policies', quotedList(auth.policies)]);
    for (const key of Object.keys(auth.metadata ?? {}).sort()) {
      rows.push([`token_meta_${key}`, goString(auth.metadata?.[key])]);
    }
  }
  rows.push(...wrapRows(secret));
  rows.push(...mapRows(secret.data));
  return keyValueTable(rows);
}

/** A wrapped response's wrap_info, as Vault's CLI names its fields (in tables and for -field). */
export function wrapFields(secret: Secret): Record<string, unknown> | undefined {
  const info = secret.wrap_info as Record<string, unknown> | null | undefined;
  if (!info || typeof info !== 'object') return undefined;
  return {
    wrapping_token: info.token,
    wrapping_accessor: info.accessor,
    wrapping_token_ttl: info.ttl,
    wrapping_token_creation_time: info.creation_time,
    wrapping_token_creation_path: info.creation_path,
    ...(info.wrapped_accessor ? { wrapped_accessor: info.wrapped_accessor } : {}),
  };
}

function wrapRows(secret: Secret): [string, string][] {
  const fields = wrapFields(secret);
  if (!fields) return [];
  return Object.entries(fields).map(([key, value]) => [
    key,
    key === 'wrapping_token_ttl' && typeof value === 'number' ? humanDuration(value) : goString(value),
  ]);
}

/** The warnings block Vault prints (to stderr) under a table. */
export function warningsText(warnings: string[] | null | undefined): string {
  if (!warnings || warnings.length === 0) return '';
  return `\nWARNING! The following warnings were returned from Cofre:\n\n${warnings.map((w) => `  * ${w}`).join('\n')}\n`;
}

/** `== Header ==` centred over a block `width` characters wide (Vault's padEqualSigns). */
export function padEqualSigns(header: string, width: number): string {
  let signs = width - (header.length + 2);
  if (signs <= 0) signs = 4;
  if (signs % 2 !== 0) signs += 1;
  const side = '='.repeat(signs / 2);
  return `${side} ${header} ${side}`;
}

/** The header over a map's table: as wide as the longest key plus the column glue and "Value". */
export function headerForMap(header: string, data: Record<string, unknown>): string {
  const maxKey = Math.max(0, ...Object.keys(data).map((k) => k.length));
  return padEqualSigns(header, maxKey + 4 + 5);
}

/** `== Secret Path ==` and the path, as Vault prints above KV v2 tables. */
export function pathBlock(path: string, title = 'Secret Path'): string {
  return `${padEqualSigns(title, path.length)}\n${path}\n`;
}

/** A titled `Key    Value` table (`====== Data ======`). */
export function titledTable(title: string, data: Record<string, unknown>): string {
  return `${headerForMap(title, data)}\n${mapTable(data)}`;
}

/** The value `-field=NAME` prints from a response (auth fields first, then data, then lease fields). */
export function extractField(secret: Secret, field: string): unknown {
  const auth = secret.auth;
  if (auth) {
    const authFields: Record<string, unknown> = {
      token: auth.client_token,
      token_accessor: auth.accessor,
      token_duration: auth.lease_duration,
      token_renewable: auth.renewable,
      token_policies: auth.token_policies ?? auth.policies,
      identity_policies: auth.identity_policies,
      policies: auth.policies,
    };
    if (field in authFields) return authFields[field];
    if (field.startsWith('token_meta_')) return auth.metadata?.[field.slice('token_meta_'.length)];
  }
  if (secret.data && field in secret.data) return secret.data[field];
  const wrap = wrapFields(secret);
  if (wrap && field in wrap) return wrap[field];
  switch (field) {
    case 'refresh_interval':
    case 'lease_duration':
      return secret.lease_duration;
    case 'lease_id':
      return secret.lease_id;
    case 'lease_renewable':
      return secret.renewable;
  }
  return undefined;
}

/** A field's raw text: strings as-is, other values Go-style, or JSON under `-format=json`. */
export function rawField(value: unknown, format: Format): string {
  if (format === 'json') return JSON.stringify(value, null, 2);
  return goString(value);
}

/** JSON as Vault prints it: two-space indent, trailing newline. */
export function toJson(value: unknown): string {
  return JSON.stringify(value ?? null, null, 2) + '\n';
}
