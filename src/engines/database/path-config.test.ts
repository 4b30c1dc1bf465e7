import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { maskedUrl } from './path-config.js';

describe('a connection URL as config/<name> shows it', () => {
  it('masks the password in every form a driver connects with, and keeps the {{password}} placeholder', () => {
    const cases: [string, string][] = [
      ['postgres://admin:S3cretPw@db:5432/app', 'postgres://admin:*****@db:5432/app'],
      ['postgres://admin:p@ssw0rd@db/app', 'postgres://admin:*****@db/app'],
      ['admin:S3cretPw@tcp(db:3306)/app', 'admin:*****@tcp(db:3306)/app'],
      ['admin:p@ssw0rd@tcp(db)/', 'admin:*****@tcp(db)/'],
      ['admin:pa(ss@tcp(db)/', 'admin:*****@tcp(db)/'],
      ['admin:S3cretPw@unix(/sock)/app', 'admin:*****@unix(/sock)/app'],
      ['admin:S3cretPw@/app', 'admin:*****@/app'],
      ['postgresql://{{username}}:{{password}}@db:5432/app', 'postgresql://{{username}}:{{password}}@db:5432/app'],
      ['{{username}}:{{password}}@tcp(db:3306)/', '{{username}}:{{password}}@tcp(db:3306)/'],
      ['postgres://db:5432/app', 'postgres://db:5432/app'],
      ['admin@tcp(db:3306)/app', 'admin@tcp(db:3306)/app'],
    ];
    for (const [url, shown] of cases) {
      assert.equal(maskedUrl(url), shown, url);
      for (const secret of ['S3cretPw', 'p@ssw0rd', 'pa(ss']) assert.ok(!maskedUrl(url).includes(secret), url);
    }
  });
});
