/**
 * What the database pages share: the engine's paths under a mount, how its lists of SQL statements and its TTLs
 * appear in a form, and the rule for writing an existing entry (only the fields the user changed are sent, as the
 * engine updates field by field: a masked connection URL read back is never written over the stored one).
 */
import { ApiError, call } from './api';

export type DatabaseKind = 'connections' | 'roles' | 'static-roles';

/** The engine's path for each kind of entry. */
export const ENGINE_PATH: Record<DatabaseKind, string> = {
  connections: 'config',
  roles: 'roles',
  'static-roles': 'static-roles',
};

/** Reads an entry; undefined when it does not exist yet (the page then creates it). */
export async function readEntry(
  mount: string,
  kind: DatabaseKind,
  name: string,
): Promise<Record<string, unknown> | undefined> {
  try {
    const res = await call('GET', `${mount}/${ENGINE_PATH[kind]}/${name}`);
    return (res?.data ?? {}) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return undefined;
    throw err;
  }
}

/** One entry of statements per line-group as stored; each ends with ";" so joined entries stay apart. */
export function statementsText(value: unknown): string {
  if (!Array.isArray(value)) return '';
  return value
    .map((s) => String(s).trim())
    .filter((s) => s !== '')
    .map((s) => (s.endsWith(';') ? s : `${s};`))
    .join('\n');
}

/** The form's statements as the engine takes them: one entry, which it splits at each ";" (blocks kept whole). */
export const statementsOf = (text: string): string[] => (text.trim() === '' ? [] : [text.trim()]);

/** Seconds as the shortest exact duration ("600" → "10m", "5400" → "1h30m"); "" for 0 (the mount's default). */
export function durationText(value: unknown): string {
  let s = Number(value ?? 0);
  if (!Number.isFinite(s) || s <= 0) return '';
  let out = '';
  for (const [unit, size] of [
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (s >= size) {
      out += `${Math.floor(s / size)}${unit}`;
      s %= size;
    }
  }
  return out;
}

/** A remaining time in words, for a lease or a rotation ("9m 58s"). */
export function remaining(seconds: number): string {
  if (seconds <= 0) return 'none';
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return [h ? `${h}h` : '', m ? `${m}m` : '', s || (!h && !m) ? `${s}s` : ''].filter(Boolean).join(' ');
}

/**
 * The body of a write: for a new entry every field that has a value; for an existing one only the fields whose
 * form value differs from what was read.
 */
export function changedFields(
  form: Record<string, unknown>,
  initial: Record<string, unknown> | undefined,
): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(form)) {
    if (initial === undefined) {
      if (value !== '' && !(Array.isArray(value) && value.length === 0)) body[key] = value;
    } else if (JSON.stringify(value) !== JSON.stringify(initial[key])) {
      body[key] = value;
    }
  }
  return body;
}

/** A comma-separated list as the engine's string lists take it. */
export const listOf = (text: string): string[] =>
  text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
