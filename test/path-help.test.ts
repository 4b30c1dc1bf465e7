import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { enableFileAudit, runCli, startServer, writeOk, type Api, type InProcessServer } from './support.js';

/**
 * `?help=1` on every path, as Vault's: the path's help text and OpenAPI document, generated from the path records
 * the router serves. Only to a token with some capability on the path: any other gets the same 403 whether the
 * path exists or not.
 */
describe('path help', () => {
  let server: InProcessServer;
  let api: Api;
  let limited: string;
  before(async () => {
    server = await startServer();
    api = server.api;
    await writeOk(api, 'sys/mounts/kv1', { type: 'kv' });
    await writeOk(api, 'sys/mounts/database', { type: 'database' });
    await writeOk(api, 'sys/auth/approle', { type: 'approle' });
    await writeOk(api, 'sys/policies/acl/helper', {
      policy:
        'path "secret/data/allowed/*" { capabilities = ["read"] }\npath "secret/data/denied/*" { capabilities = ["deny"] }',
    });
    limited = (await api.call('POST', 'auth/token/create', { body: { policies: ['helper'] } })).body.auth.client_token;
  });
  after(() => server.stop());

  const help = (path: string, token?: string, method = 'GET') =>
    api.call(method, `${path}${path.includes('?') ? '&' : '?'}help=1`, token === undefined ? {} : { token });

  it('a KV version 2 path: its route, fields and OpenAPI operations, in Vault’s shape', async () => {
    const res = await help('secret/data/my-app');
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(Object.keys(res.body).sort(), ['help', 'openapi', 'see_also']);
    assert.equal(res.body.see_also, null);
    const text: string = res.body.help;
    assert.match(text, /^Request: {8}data\/my-app\nMatching Route: \^data\/\(\?<path>.+\)\$\n/);
    assert.match(text, /## PARAMETERS\n\n {4}data \(map\)\n\n {8}\S/);
    assert.match(text, /\n {4}options \(map\)\n/);
    assert.match(text, /## DESCRIPTION\n\n\S/);
    const paths = res.body.openapi.paths;
    assert.deepEqual(Object.keys(paths), ['/secret/data/{path}']);
    assert.deepEqual(Object.keys(paths['/secret/data/{path}']).sort(), ['delete', 'get', 'patch', 'post']);
    assert.equal(res.body.openapi.openapi, '3.0.2');
  });

  it('the help of a mount lists its paths with their synopses', async () => {
    const res = await help('secret/');
    assert.equal(res.status, 200, res.text);
    assert.match(res.body.help, /^## DESCRIPTION\n\n\S/);
    assert.match(res.body.help, /## PATHS\n/);
    assert.match(res.body.help, /\n {4}\^config\$\n {8}\S/);
    assert.match(res.body.help, /\n {4}\^metadata\S*\$\n {8}\S/);
    assert.ok(!res.body.help.includes('^.*$'), 'the catch-all that only answers 404 is not a path');
    assert.ok(Object.keys(res.body.openapi.paths).includes('/secret/config'));
    // Without the slash, as `vault path-help secret` sends it, too.
    const bare = await help('secret');
    assert.equal(bare.body.help, res.body.help);
  });

  it('KV version 1, database, sys and auth paths', async () => {
    const v1 = await help('kv1/some/secret');
    assert.equal(v1.status, 200, v1.text);
    assert.match(v1.body.help, /Matching Route: \^\(\?<path>\.\*\)\$/);

    const db = await help('database/config/my-db');
    assert.equal(db.status, 200, db.text);
    assert.match(db.body.help, /\n {4}connection_url \(string\)\n/);
    assert.match(db.body.help, /\n {4}name \(string\)\n/);
    assert.ok(res200Paths(db).some((p) => p === '/database/config/{name}'));

    const mounts = await help('sys/mounts/anything');
    assert.equal(mounts.status, 200, mounts.text);
    assert.match(mounts.body.help, /\n {4}type \(string\)\n/);
    const policies = await help('sys/policies/acl/x');
    assert.equal(policies.status, 200, policies.text);
    assert.match(policies.body.help, /\n {4}policy \(string\)\n/);

    const token = await help('auth/token/create');
    assert.equal(token.status, 200, token.text);
    assert.match(token.body.help, /\n {4}ttl \(duration \(sec\)\)\n/);
    const role = await help('auth/approle/role/web');
    assert.equal(role.status, 200, role.text);
    assert.match(role.body.help, /\n {4}token_policies \(slice\)\n/);
    const authRoot = await help('auth/approle/');
    assert.match(authRoot.body.help, /## PATHS/);
  });

  it('an unknown path is 404 as in Vault: no mount, or a mount with no such path', async () => {
    const none = await help('nomount/x');
    assert.equal(none.status, 404);
    assert.deepEqual(none.body.errors, ['no handler for route "nomount/x". route entry not found.']);
    const kvBogus = await help('secret/bogus/x');
    assert.equal(kvBogus.status, 404);
    assert.deepEqual(kvBogus.body.errors, ['unsupported path']);
    const sysBogus = await help('sys/no-such-endpoint');
    assert.equal(sysBogus.status, 404);
  });

  it('a token without access gets 403 and learns nothing: the same answer whether the path exists or not', async () => {
    const allowed = await help('secret/data/allowed/app', limited);
    assert.equal(allowed.status, 200, allowed.text);
    assert.match(allowed.body.help, /^Request: {8}data\/allowed\/app\n/);

    const answers = await Promise.all(
      ['secret/data/other', 'secret/data/denied/app', 'secret/', 'sys/mounts', 'nomount/x', 'secret/bogus/x'].map(
        (path) => help(path, limited),
      ),
    );
    for (const res of answers) {
      assert.equal(res.status, 403, res.text);
      assert.deepEqual(res.body, { errors: ['permission denied'] });
    }
    for (const token of ['', 'not-a-token']) {
      const res = await help('secret/data/allowed/app', token);
      assert.equal(res.status, 403);
      assert.ok(!('help' in res.body));
    }
  });

  it('help is asked with any method and runs nothing else: a DELETE with help=1 deletes nothing', async () => {
    await writeOk(api, 'secret/data/keep', { data: { a: 'b' } });
    const res = await help('secret/data/keep', undefined, 'DELETE');
    assert.equal(res.status, 200);
    assert.ok(res.body.help);
    assert.equal((await api.call('GET', 'secret/data/keep')).body.data.data.a, 'b');
    // An empty help parameter is no help request, as in Vault.
    const plain = await api.call('GET', 'secret/data/keep?help=');
    assert.equal(plain.body.data.data.a, 'b');
  });

  it('is audited as a help operation and takes a use of a limited-use token', async () => {
    const log = join(server.dir, 'help-audit.log');
    await enableFileAudit(api, log);
    try {
      const once = (await api.call('POST', 'auth/token/create', { body: { policies: ['helper'], num_uses: 1 } })).body
        .auth.client_token;
      assert.equal((await help('secret/data/allowed/x', once)).status, 200);
      assert.equal((await help('secret/data/allowed/x', once)).status, 403, 'the one use was spent');
      const entries = readFileSync(log, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line));
      const helps = entries.filter((e) => e.request?.operation === 'help');
      assert.ok(helps.some((e) => e.type === 'request' && e.request.path === 'secret/data/allowed/x'));
      assert.ok(helps.some((e) => e.type === 'response'));
    } finally {
      await api.call('DELETE', 'sys/audit/file');
    }
  });

  it('cofre path-help prints the help, or the OpenAPI document with -format=json', async () => {
    const text = await runCli(server.url, server.rootToken, 'path-help', 'secret/data/app');
    assert.equal(text.code, 0, text.out);
    assert.match(text.out, /^Request: {8}data\/app\nMatching Route: /);
    const json = await runCli(server.url, server.rootToken, 'path-help', '-format=json', 'secret/data/app');
    assert.equal(json.code, 0, json.out);
    assert.ok(JSON.parse(json.out).paths['/secret/data/{path}']);
    const mount = await runCli(server.url, server.rootToken, 'path-help', 'secret/');
    assert.match(mount.out, /## PATHS/);
    const denied = await runCli(server.url, limited, 'path-help', 'sys/mounts');
    assert.equal(denied.code, 2);
    assert.match(denied.out, /^Error retrieving help: Error making API request\.\n\nURL: GET .*help=1\nCode: 403/);
    const missing = await runCli(server.url, server.rootToken, 'path-help', 'nomount/x');
    assert.equal(missing.code, 2);
    assert.match(missing.out, /Code: 404/);
  });

  it('a sealed server answers 503, and the CLI says so', async () => {
    assert.equal((await api.call('PUT', 'sys/seal')).status, 204);
    try {
      const res = await help('secret/data/app');
      assert.equal(res.status, 503);
      const cli = await runCli(server.url, server.rootToken, 'path-help', 'secret/data/app');
      assert.equal(cli.code, 2);
      assert.match(cli.out, /sealed/);
    } finally {
      for (const key of server.keys.slice(0, 2)) await api.call('PUT', 'sys/unseal', { body: { key } });
    }
  });
});

function res200Paths(res: { body: { openapi: { paths: Record<string, unknown> } } }): string[] {
  return Object.keys(res.body.openapi.paths);
}
