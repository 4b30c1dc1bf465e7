import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Secret } from '../client/wire.js';
import { CliError } from './errors.js';
import {
  columns,
  extractField,
  goString,
  headerForMap,
  humanDuration,
  keyValueTable,
  listTable,
  padEqualSigns,
  resolveFormat,
  secretTable,
} from './format.js';
import { Output } from './output.js';

function capture(): { out: string[]; err: string[]; streams: ConstructorParameters<typeof Output>[2] } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    streams: { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) } },
  };
}

describe('values and durations', () => {
  it('formats values like Go %v', () => {
    assert.equal(goString(null), '<nil>');
    assert.equal(goString('x'), 'x');
    assert.equal(goString([1, 'a', true]), '[1 a true]');
    assert.equal(goString({ b: 2, a: { c: null } }), 'map[a:map[c:<nil>] b:2]');
  });

  it('prints durations as Vault does', () => {
    assert.equal(humanDuration(0), '0s');
    assert.equal(humanDuration(45), '45s');
    assert.equal(humanDuration(90), '1m30s');
    assert.equal(humanDuration(3600), '1h');
    assert.equal(humanDuration(5400), '1h30m');
    assert.equal(humanDuration(3601), '1h1s');
    assert.equal(humanDuration(2764800), '768h');
  });
});

describe('tables', () => {
  it('aligns columns with four spaces and prints empty cells as n/a', () => {
    assert.equal(
      keyValueTable([
        ['a', '1'],
        ['longer_key', ''],
      ]),
      'Key           Value\n---           -----\na             1\nlonger_key    n/a\n',
    );
    assert.equal(columns([['x', 'y', 'z']]), 'x    y    z\n');
    assert.equal(listTable(['foo', 'bar/']), 'Keys\n----\nfoo\nbar/\n');
  });

  it('centres headers as Vault (padEqualSigns)', () => {
    assert.equal(padEqualSigns('Secret Path', 'secret/data/creds'.length), '== Secret Path ==');
    assert.equal(headerForMap('Metadata', { custom_metadata: 1 }), '======= Metadata =======');
    assert.equal(headerForMap('Data', { passcode: 1 }), '====== Data ======');
  });

  it('prints a secret with lease, data and durations', () => {
    const secret: Secret = { lease_duration: 2764800, lease_id: '', data: { b: 'x', a: 1, ttl: 60 } };
    assert.equal(
      secretTable(secret),
      'Key                 Value\n---                 -----\nrefresh_interval    768h\na                   1\nb                   x\nttl                 1m\n',
    );
  });

  it('prints auth blocks with quoted policies and ∞ for root', () => {
    const secret: Secret = {
      auth: {
        client_token: 's.1',
        accessor: 'acc',
        lease_duration: 0,
        renewable: false,
        policies: ['root'],
        token_policies: ['root'],
        metadata: { user: 'bob' },
      },
    };
    const table = secretTable(secret);
    assert.match(table, /^token_duration +∞$/m);
    assert.match(table, /^token_policies +\["root"\]$/m);
    assert.match(table, /^identity_policies +\[\]$/m);
    assert.match(table, /^token_meta_user +bob$/m);
    assert.equal(extractField(secret, 'token'), 's.1');
    assert.equal(extractField(secret, 'token_meta_user'), 'bob');
  });
});

describe('output formats', () => {
  it('resolves -format, COFRE_FORMAT, VAULT_FORMAT in that order', () => {
    assert.equal(resolveFormat(undefined, {}), 'table');
    assert.equal(resolveFormat(undefined, { VAULT_FORMAT: 'json' }), 'json');
    assert.equal(resolveFormat(undefined, { VAULT_FORMAT: 'yaml', COFRE_FORMAT: 'JSON' }), 'json');
    assert.equal(resolveFormat('table', { COFRE_FORMAT: 'json' }), 'table');
    assert.throws(
      () => resolveFormat('xml', {}),
      (e: unknown) => e instanceof CliError && e.exitCode === 2,
    );
  });

  it('prints the JSON response with two-space indent', () => {
    const c = capture();
    new Output('json', undefined, c.streams).secret({ data: { a: 1 } });
    assert.deepEqual(JSON.parse(c.out.join('')), { data: { a: 1 } });
    assert.equal(c.out.join(''), '{\n  "data": {\n    "a": 1\n  }\n}\n');
  });

  it('prints one raw field without a newline when not a TTY', () => {
    const c = capture();
    new Output('table', 'a', c.streams).secret({ data: { a: 'value', b: 2 } });
    assert.equal(c.out.join(''), 'value');
    const j = capture();
    new Output('json', 'm', j.streams).secret({ data: { m: { k: 'v' } } });
    assert.deepEqual(JSON.parse(j.out.join('')), { k: 'v' });
    assert.throws(() => new Output('table', 'nope', capture().streams).secret({ data: {} }), /not present/);
  });

  it('prints warnings to stderr and keeps success lines out of JSON output', () => {
    const c = capture();
    const o = new Output('table', undefined, c.streams);
    o.secret({ data: { a: 1 }, warnings: ['careful'] });
    o.success('Success! done');
    assert.match(c.err.join(''), /careful/);
    assert.match(c.out.join(''), /Success! done/);
    const j = capture();
    new Output('json', undefined, j.streams).success('Success! done');
    assert.deepEqual(j.out, []);
  });
});
