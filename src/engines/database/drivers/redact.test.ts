import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { redact } from './redact.js';

describe('redact', () => {
  const password = 'Abcdefgh1-XyZ0pqrStu';
  it('takes out a whole password, its URL-encoded form, and pieces of it that a database quoted cut short', () => {
    assert.equal(redact(`bad ${password} here`, [password]), 'bad [redacted] here');
    // MySQL stops the "near" text at 80 characters, half-way through the password.
    const mysql = `You have an error in your SQL syntax; near 'CREAT USER 'v-x'@'%' IDENTIFIED BY 'Abcdefgh' at line 1`;
    assert.ok(!redact(mysql, [password]).includes('Abcdefgh'));
    const pg = 'syntax error at or near "pqrStu"';
    assert.equal(redact(pg, [password]), 'syntax error at or near "[redacted]"');
  });
  it('leaves ordinary text alone', () => {
    assert.equal(redact('relation "forbidden" does not exist', [password]), 'relation "forbidden" does not exist');
    assert.equal(redact('anything', ['']), 'anything');
  });
});
