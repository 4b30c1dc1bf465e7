import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderUsername } from './username-template.js';

const meta = { roleName: 'readonly-analytics', displayName: 'token-alice' };
const render = (template: string, max = 100) => renderUsername(template, meta, max);

describe('username_template', () => {
  it("renders Vault's default PostgreSQL and MySQL templates", () => {
    const pg = render(
      '{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}',
    );
    assert.match(pg, /^v-token-al-readonly-[A-Za-z0-9]{20}-\d{10}$/);
    const my = render(
      '{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 10) (.RoleName | truncate 10) (random 20) (unix_time) | truncate 32 }}',
    );
    assert.equal(my.length, 32);
    assert.ok(my.startsWith('v-token-alic-readonly-a-'));
    assert.match(
      render('v-{{.DisplayName | truncate 8}}-{{.RoleName | truncate 8}}-{{random 20}}-{{unix_time}}'),
      /^v-token-al-readonly-[A-Za-z0-9]{20}-\d+$/,
    );
  });

  it("has the functions of Vault's sdk/helper/template", () => {
    assert.equal(render('{{ .RoleName | replace "-" "_" | uppercase }}'), 'READONLY_ANALYTICS');
    assert.equal(render('{{ "MiXeD" | lowercase }}'), 'mixed');
    assert.equal(render('{{ .RoleName | truncate 100 }}'), 'readonly-analytics', 'shorter than N: unchanged');
    // truncate_sha256 keeps N-8 characters and appends 8 hex digits of the rest's SHA-256.
    assert.match(render('{{ .RoleName | truncate_sha256 12 }}'), /^read[0-9a-f]{8}$/);
    assert.equal(render('{{ .RoleName | truncate_sha256 50 }}'), 'readonly-analytics');
    assert.equal(render('{{ "ab" | sha256 | truncate 8 }}'), 'fb8e20fc');
    assert.equal(render('{{ "ab" | base64 }}'), 'YWI=');
    assert.match(render('{{ uuid }}'), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const ms = Number(render('{{ unix_time_millis }}'));
    assert.ok(Math.abs(ms - Date.now()) < 5000);
    assert.match(render('{{ timestamp "2006-01-02T15:04:05Z07:00" }}'), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const randoms = new Set(Array.from({ length: 20 }, () => render('{{ random 12 }}')));
    assert.equal(randoms.size, 20);
    assert.equal(render('{{ printf "%s-%d-%%" .RoleName 7 }}'), 'readonly-analytics-7-%');
  });

  it("keeps a caller's display name from breaking out of the statements' quotes", async () => {
    const { renderStatement } = await import('./statements.js');
    // A JWT login's user claim is in the display name: "a'#" made MySQL create "v-jwt-a" with no password.
    for (const displayName of [`jwt-a'#`, 'jwt-"; ALTER ROLE x SUPERUSER; --', 'jwt-a b\\c`d$(e)']) {
      const name = renderUsername('v-{{.DisplayName}}-{{.RoleName}}', { roleName: 'r', displayName }, 100);
      assert.match(name, /^[A-Za-z0-9_.@-]+$/, name);
      const statement = renderStatement(`CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'`, {
        username: name,
        password: 'pw',
      });
      assert.equal(statement, `CREATE USER '${name}'@'%' IDENTIFIED BY 'pw'`);
    }
    assert.equal(render('{{.DisplayName}}'), 'token-alice');
  });

  it('honours trim markers and comments, and raw strings', () => {
    assert.equal(render('a  {{- .RoleName | truncate 4 -}}  b'), 'areadb');
    assert.equal(render('x{{/* a comment */}}y'), 'xy');
    assert.equal(render('{{ `a"b` }}'), 'a"b');
  });

  it('refuses what it does not support, and names that are too long or empty', () => {
    const bad: [string, RegExp][] = [
      ['{{ if .RoleName }}x{{ end }}', /"if" is not supported/],
      ['{{ $x := 1 }}', /unsupported syntax/],
      ['{{ .Policy }}', /unknown field "\.Policy"/],
      ['{{ nope 3 }}', /unknown function "nope"/],
      ['{{ .RoleName ', /unclosed action/],
      ['{{ .RoleName | truncate "8" }}', /must be an integer/],
      ['{{ .RoleName | truncate 0 }}', /must be > 0/],
      ['{{ .RoleName | truncate_sha256 8 }}', /must be > 8/],
      ['{{ random }}', /takes 1 argument/],
      ['{{ "a" "b" }}', /not a function/],
      ['{{ (.RoleName }}', /unclosed "\("/],
    ];
    for (const [template, message] of bad) assert.throws(() => render(template), message, template);
    assert.throws(() => render('{{ .RoleName }}', 10), /18 characters.*at most 10/);
    assert.throws(() => render('{{ .DisplayName | replace "token-alice" "" }}'), /empty username/);
  });
});
