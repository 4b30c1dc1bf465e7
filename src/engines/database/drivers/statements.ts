/**
 * The statements a role gives (creation, revocation, renewal, rotation) as Vault's database plugins read them: each
 * entry may hold several statements separated by ';', and {{name}}, {{username}}, {{password}} and {{expiration}}
 * are replaced by plain text substitution. Entries are split before substitution, so a ';' in a password never
 * splits a statement.
 */

export type Dialect = 'postgres' | 'mysql';

export interface StatementValues {
  username: string;
  password?: string;
  expiration?: Date;
}

/**
 * Splits one entry into statements. PostgreSQL follows Vault's plugin: an entry that holds a block (the word END
 * outside quotes, as in `DO $$ BEGIN ... END $$`) is run whole, since its inner ';' do not end statements. We also
 * run an entry with a dollar-quoted body whole (a `CREATE FUNCTION ... AS $$ ...; ... $$`), which Vault would split.
 */
export function splitStatements(raw: string, dialect: Dialect): string[] {
  const decoded = decodeEntry(raw);
  if (decoded) return decoded.flatMap((e) => splitStatements(e, dialect));
  const entry = raw;
  if (dialect === 'postgres' && isBlock(entry)) return entry.trim() ? [entry.trim()] : [];
  return entry
    .split(';')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/**
 * Vault's API also takes an entry base64-encoded, or as a JSON array of statements (plain or base64), so that
 * statements survive clients and shells that mangle quotes: the entries inside, or undefined for plain SQL.
 */
function decodeEntry(entry: string): string[] | undefined {
  const text = entry.trim();
  let candidate = text;
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(text) && text.length % 4 === 0) {
    const bytes = Buffer.from(text, 'base64');
    const utf8 = new TextDecoder('utf-8', { fatal: true });
    try {
      candidate = utf8.decode(bytes);
    } catch {
      return undefined; // not text: it was SQL that happened to look like base64
    }
    // A one-word statement (ROLLBACK) is valid base64 too; what it decodes to is rarely printable text.
    if (!/^[\P{Cc}\t\n\r]*$/u.test(candidate)) return undefined;
    if (!candidate.startsWith('[')) return [candidate];
  }
  if (!candidate.startsWith('[')) return undefined;
  try {
    const parsed: unknown = JSON.parse(candidate);
    if (Array.isArray(parsed) && parsed.every((s) => typeof s === 'string')) return parsed;
  } catch {
    // not JSON: plain SQL that starts with '['
  }
  return undefined;
}

function isBlock(entry: string): boolean {
  // Quoted text ('it''s the end', "END") says nothing about the statement's structure.
  const unquoted = entry.replace(/'(?:[^']|'')*'|"(?:[^"]|"")*"/g, ' ');
  return /\bEND\b/i.test(unquoted) || /\$[A-Za-z_]*\$/.test(unquoted);
}

/** Fills the placeholders Vault's plugins fill; {{name}} and {{username}} are both the username. */
export function renderStatement(statement: string, values: StatementValues): string {
  return statement.replace(/\{\{\s*(name|username|password|expiration)\s*\}\}/g, (whole, key: string) => {
    if (key === 'name' || key === 'username') return values.username;
    if (key === 'password') return values.password ?? whole;
    return values.expiration ? formatExpiration(values.expiration) : whole;
  });
}

/** Every entry split and rendered, in order: the statements to run, one by one. */
export function expandStatements(entries: readonly string[], values: StatementValues, dialect: Dialect): string[] {
  return entries.flatMap((e) => splitStatements(e, dialect)).map((s) => renderStatement(s, values));
}

/**
 * Vault's plugins format {{expiration}} with Go's layout "2006-01-02 15:04:05-0700", which both PostgreSQL
 * (`VALID UNTIL '...'`) and MySQL read as a timestamp; we always give it in UTC.
 */
export function formatExpiration(date: Date): string {
  return `${date.toISOString().slice(0, 19).replace('T', ' ')}+0000`;
}
