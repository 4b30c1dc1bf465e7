import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startServer, writeOk, type InProcessServer } from './support.js';

/**
 * Keeps docs/vault-compatibility.md true: every API path its tables name is asked for its help (`?help=1`, which
 * answers 200 for a path a record serves and 404 for one nothing serves). A row marked yes or partial must be
 * served, a row marked no must not. A feature that lands without its row changed, or a row promising a path that
 * is not there, fails here.
 */

const DOC = join(import.meta.dirname, '..', 'docs', 'vault-compatibility.md');

/** Where the test mounts the engines and auth methods whose tables name paths relative to a mount. */
const SECTION_MOUNTS: Record<
  string,
  { prefix: string; enable?: { table: 'mounts' | 'auth'; type: string; options?: object } }
> = {
  'System backend': { prefix: 'sys/' },
  Token: { prefix: 'auth/token/' },
  Kubernetes: { prefix: 'auth/kubernetes/', enable: { table: 'auth', type: 'kubernetes' } },
  KV: { prefix: 'kvt/', enable: { table: 'mounts', type: 'kv', options: { version: '2' } } },
  Database: { prefix: 'database/', enable: { table: 'mounts', type: 'database' } },
  Transit: { prefix: 'transit/', enable: { table: 'mounts', type: 'transit' } },
};

interface Row {
  section: string;
  status: string;
  paths: string[];
}

/** Words a first cell may hold besides its paths and a parenthesis: anything else makes it a feature, not paths. */
const JOINING_WORDS = new Set(['and', 'the', 'legacy']);

/** The API paths a row's first cell names, resolved against the section's prefix and the cell's previous path. */
function pathsOf(cell: string, prefix: string): string[] | undefined {
  const outside = cell
    .replace(/\([^)]*\)/g, ' ')
    .replace(/`[^`]*`/g, ' ')
    .replace(/[,.]/g, ' ')
    .split(/\s+/)
    .filter((w) => w && !JOINING_WORDS.has(w));
  if (outside.length > 0) return undefined;
  const items = [...cell.replace(/\([^)]*\)/g, ' ').matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
  if (items.length === 0 || items.some((i) => /\s/.test(i) || i.startsWith(':'))) return undefined;
  const paths: string[] = [];
  let previous = '';
  for (const item of items) {
    let path: string;
    if (item.startsWith('.../')) path = `${previous}/${item.slice(4)}`;
    else if (item.startsWith(prefix)) path = item;
    else if (!item.includes('/') && previous.includes('/'))
      path = `${previous.slice(0, previous.lastIndexOf('/'))}/${item}`;
    else path = prefix + item;
    previous = path;
    paths.push(path);
  }
  // A parameter or a wildcard stands for any one segment.
  return paths.map((p) => p.replace(/:[a-z_]+/g, 'x').replace(/\*/g, 'x'));
}

function rowsOf(markdown: string): Row[] {
  const rows: Row[] = [];
  let section: string | undefined;
  for (const line of markdown.split('\n')) {
    const heading = /^#{2,3} (.+)$/.exec(line);
    if (heading) {
      section = Object.keys(SECTION_MOUNTS).find((name) => heading[1]!.startsWith(name));
      continue;
    }
    if (!section || !line.startsWith('|') || /^\|\s*-/.test(line)) continue;
    const cells = line
      .split(/(?<!\\)\|/)
      .slice(1, -1)
      .map((c) => c.trim());
    const status = cells[1] ?? '';
    if (!['yes', 'partial', 'no'].includes(status)) continue;
    const paths = pathsOf(cells[0]!, SECTION_MOUNTS[section]!.prefix);
    if (paths) rows.push({ section, status, paths });
  }
  return rows;
}

describe('docs/vault-compatibility.md', () => {
  let server: InProcessServer;
  before(async () => {
    server = await startServer();
    for (const { prefix, enable } of Object.values(SECTION_MOUNTS)) {
      if (!enable) continue;
      const at =
        enable.table === 'auth' ? `sys/auth/${prefix.slice('auth/'.length, -1)}` : `sys/mounts/${prefix.slice(0, -1)}`;
      await writeOk(server.api, at, { type: enable.type, ...(enable.options ? { options: enable.options } : {}) });
    }
  });
  after(() => server.stop());

  const rows = rowsOf(readFileSync(DOC, 'utf8'));

  it('names paths in every table this test knows, so that it checks something', () => {
    for (const section of Object.keys(SECTION_MOUNTS)) {
      assert.ok(
        rows.some((r) => r.section === section),
        `no path rows found under "${section}": the table's shape changed, update this test`,
      );
    }
    assert.ok(rows.length >= 30, `only ${rows.length} rows of paths found`);
  });

  it('every path marked yes or partial is served, every path marked no is not', async () => {
    const wrong: string[] = [];
    for (const row of rows) {
      for (const path of row.paths) {
        // A row may name a path whose record takes one more segment (`sys/leases/revoke-prefix/:prefix`).
        let res = await server.api.call('GET', `${path}?help=1`);
        if (res.status === 404) res = await server.api.call('GET', `${path}/x?help=1`);
        const served = res.status === 200;
        if (res.status !== 200 && res.status !== 404) wrong.push(`${path}: help answered ${res.status} ${res.text}`);
        else if (served !== (row.status !== 'no')) {
          wrong.push(`${path} is marked "${row.status}" (${row.section}) but ${served ? 'is' : 'is not'} served`);
        }
      }
    }
    assert.deepEqual(wrong, []);
  });
});
