import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { expandStatements, formatExpiration, renderStatement, splitStatements } from './statements.js';

describe('database statements', () => {
  it('splits on ";" and drops empty statements', () => {
    const entry = `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}';\n  GRANT SELECT ON t TO "{{name}}";;  ; `;
    assert.deepEqual(splitStatements(entry, 'postgres'), [
      `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}'`,
      'GRANT SELECT ON t TO "{{name}}"',
    ]);
    assert.deepEqual(splitStatements(' ; \n', 'mysql'), []);
  });

  it('runs a PostgreSQL block whole, as Vault does for an entry holding END', () => {
    const block = `DO $$ BEGIN IF NOT EXISTS (SELECT 1) THEN CREATE ROLE x; END IF; END $$;`;
    assert.deepEqual(splitStatements(block, 'postgres'), [block]);
    const fn = `CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql`;
    assert.deepEqual(splitStatements(fn, 'postgres'), [fn], 'dollar-quoted bodies too');
    // END inside quotes or inside another word says nothing.
    assert.deepEqual(splitStatements(`COMMENT ON ROLE x IS 'the END'; GRANT APPEND TO x`, 'postgres').length, 2);
    assert.deepEqual(splitStatements(`CREATE ROLE "END"; SELECT 1`, 'postgres').length, 2);
    assert.equal(splitStatements('BEGIN NOT ATOMIC SELECT 1; END', 'mysql').length, 2, 'MySQL: always split');
  });

  it('fills {{name}}, {{username}}, {{password}} and {{expiration}} after splitting', () => {
    const expiration = new Date(Date.UTC(2030, 0, 2, 3, 4, 5, 678));
    const values = { username: 'v-app-x', password: 'a;b', expiration };
    assert.equal(
      renderStatement(
        `CREATE ROLE "{{name}}" PASSWORD '{{password}}' VALID UNTIL '{{ expiration }}' -- {{username}}`,
        values,
      ),
      `CREATE ROLE "v-app-x" PASSWORD 'a;b' VALID UNTIL '2030-01-02 03:04:05+0000' -- v-app-x`,
    );
    assert.deepEqual(
      expandStatements([`ALTER ROLE "{{name}}" PASSWORD '{{password}}'; SELECT 1`, ''], values, 'postgres'),
      [`ALTER ROLE "v-app-x" PASSWORD 'a;b'`, 'SELECT 1'],
    );
    assert.equal(
      renderStatement('{{password}} {{expiration}} {{other}}', { username: 'u' }),
      '{{password}} {{expiration}} {{other}}',
    );
    assert.equal(renderStatement('{{name}}', { username: '$&$1' }), '$&$1', 'replacement patterns are not interpreted');
  });

  it('formats expirations as Go\'s "2006-01-02 15:04:05-0700" in UTC', () => {
    assert.equal(formatExpiration(new Date('2026-11-23T23:59:59.999-05:00')), '2026-11-24 04:59:59+0000');
  });
});

describe('statement entries in the encodings Vault accepts', () => {
  const sql = 'CREATE ROLE "{{name}}"; GRANT SELECT, INSERT ON t TO "{{name}}"';
  it('plain, base64, a JSON array, and a base64 JSON array give the same statements', () => {
    const plain = splitStatements(sql, 'postgres');
    assert.deepEqual(plain, ['CREATE ROLE "{{name}}"', 'GRANT SELECT, INSERT ON t TO "{{name}}"']);
    assert.deepEqual(splitStatements(Buffer.from(sql).toString('base64'), 'postgres'), plain);
    const json = JSON.stringify(['CREATE ROLE "{{name}}"', 'GRANT SELECT, INSERT ON t TO "{{name}}"']);
    assert.deepEqual(splitStatements(json, 'postgres'), plain);
    assert.deepEqual(splitStatements(Buffer.from(json).toString('base64'), 'mysql'), plain);
  });
  it('a one-word statement that looks like base64 stays SQL', () => {
    assert.deepEqual(splitStatements('ROLLBACK', 'mysql'), ['ROLLBACK']);
  });
});
