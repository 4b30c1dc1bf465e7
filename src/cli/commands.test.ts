/**
 * The CLI commands, run in-process (`buildProgram()` / `run()`, output captured through `stdio`) against a real
 * Cofre server (test/support.ts: real SQLite file, real HTTP listener, initialised and unsealed through the API).
 * Each test asserts on what the command printed, its exit code, and on the real effect, read back through the API.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { startServer, tempDir } from '../../test/support.js';
import type { Api, InProcessServer } from '../../test/support.js';
import { defaultSources, readStdin } from './input.js';
import { stdio } from './output.js';
import type { Streams } from './output.js';
import { buildProgram, run } from './program.js';

/** An address no request can reach (fetch refuses port 1 outright), so it can never be another test's server. */
const DEAD = 'http://127.0.0.1:1';
const ENV_KEYS = [
  'COFRE_ADDR',
  'VAULT_ADDR',
  'COFRE_TOKEN',
  'VAULT_TOKEN',
  'COFRE_TOKEN_FILE',
  'COFRE_FORMAT',
  'VAULT_FORMAT',
  'COFRE_CACERT',
  'VAULT_CACERT',
  'COFRE_SKIP_VERIFY',
  'VAULT_SKIP_VERIFY',
];

let srv: InProcessServer;
let api: Api;
const dir = tempDir('cli-commands');
const tokenFile = join(dir, 'token');
const savedEnv = { ...process.env };

before(async () => {
  srv = await startServer();
  api = srv.api;
  // secret/ is KV v2 (the dev default mounts); old/ is a KV version 1 mount.
  const mounted = await api.call('POST', 'sys/mounts/old', { body: { type: 'kv' } });
  assert.equal(mounted.status, 204, mounted.text);
  for (const key of ENV_KEYS) delete process.env[key];
  process.env.COFRE_ADDR = srv.url;
  process.env.COFRE_TOKEN = srv.rootToken;
  process.env.COFRE_TOKEN_FILE = tokenFile;
});

after(async () => {
  process.env = savedEnv;
  await srv?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Result {
  code: number;
  out: string;
  err: string;
}

interface CliOptions {
  /** What the command reads on stdin (default: nothing, as `< /dev/null`). */
  stdin?: string;
  /** Environment for this run; undefined removes a variable. */
  env?: Record<string, string | undefined>;
}

/** Runs `cofre ARGS` in-process and captures its output and exit code. */
async function cliWith(opts: CliOptions, ...args: string[]): Promise<Result> {
  let out = '';
  let err = '';
  const saved: Streams = { stdout: stdio.stdout, stderr: stdio.stderr };
  const savedStdin = defaultSources.readStdin;
  const envBefore: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(opts.env ?? {})) {
    envBefore[key] = process.env[key];
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  stdio.stdout = { write: (s: string) => (out += s) };
  stdio.stderr = { write: (s: string) => (err += s) };
  // The real stdin reader, over a stream holding the given input.
  defaultSources.readStdin = () => readStdin(Readable.from([Buffer.from(opts.stdin ?? '')]));
  try {
    const code = await run(buildProgram(), args);
    return { code, out, err };
  } finally {
    Object.assign(stdio, saved);
    defaultSources.readStdin = savedStdin;
    for (const [key, value] of Object.entries(envBefore)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
}

const cli = (...args: string[]): Promise<Result> => cliWith({}, ...args);

/** Runs a command that must succeed and returns its stdout. */
async function ok(...args: string[]): Promise<string> {
  const r = await cli(...args);
  assert.equal(r.code, 0, `cofre ${args.join(' ')} exited ${r.code}\nstdout: ${r.out}\nstderr: ${r.err}`);
  return r.out;
}

/** The data of a KV v2 secret (latest version), read through the API. */
async function kvData(path: string): Promise<unknown> {
  const res = await api.call('GET', path);
  assert.equal(res.status, 200, res.text);
  return res.body.data.data;
}

/**
 * A new token made through the API (a child of root, or of `token` when given). Its accessor is base64url, so it may start
 * with "-" and must follow "--" on a command line (Vault's accessors are alphanumeric).
 */
async function newToken(body: Record<string, unknown> = {}, token?: string): Promise<{ id: string; accessor: string }> {
  const res = await api.call('POST', 'auth/token/create', { body, ...(token ? { token } : {}) });
  assert.equal(res.status, 200, res.text);
  return { id: res.body.auth.client_token, accessor: res.body.auth.accessor };
}

async function tokenAlive(token: string): Promise<boolean> {
  return (await api.call('POST', 'auth/token/lookup', { body: { token } })).status === 200;
}

describe('kv on KV v2 (secret/) and KV v1 (old/)', () => {
  it('put writes MOUNT/data/KEY with -cas and prints the path and metadata; -format=json the response', async () => {
    const r = await cli('kv', 'put', '-cas=0', 'secret/put/foo', 'a=1');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^=+ Secret Path =+\nsecret\/data\/put\/foo\n\n=+ Metadata =+\nKey +Value\n-+ +-+\n/);
    assert.match(r.out, /^deletion_time +n\/a$/m);
    assert.match(r.out, /^version +1$/m);
    assert.deepEqual(await kvData('secret/data/put/foo'), { a: '1' });

    // -cas=0 reached the server: a second "create only" write is refused, and the secret is unchanged.
    const again = await cli('kv', 'put', '-cas=0', 'secret/put/foo', 'a=2');
    assert.equal(again.code, 1);
    assert.equal(
      again.err,
      'Error: writing secret/data/put/foo: Error making API request.\n\n' +
        `URL: PUT ${srv.url}/v1/secret/data/put/foo\n` +
        'Code: 400. Errors:\n\n* check-and-set parameter did not match the current version\n',
    );
    assert.deepEqual(await kvData('secret/data/put/foo'), { a: '1' });

    const json = JSON.parse(await ok('kv', 'put', '-format=json', '-mount=secret', 'put/foo', 'a=3'));
    assert.equal(json.data.version, 2);
    assert.deepEqual(await kvData('secret/data/put/foo'), { a: '3' });
  });

  it('on KV v1 put, get and delete use the path as given (no data/), -mount included', async () => {
    assert.equal(await ok('kv', 'put', 'old/foo', 'a=1'), 'Success! Data written to: old/foo\n');
    assert.deepEqual((await api.call('GET', 'old/foo')).body.data, { a: '1' });
    assert.equal((await api.call('GET', 'old/data/foo')).status, 404);

    assert.equal(await ok('kv', 'put', '-mount=old', 'foo', 'b=2'), 'Success! Data written to: old/foo\n');
    assert.deepEqual((await api.call('GET', 'old/foo')).body.data, { b: '2' }, 'KV v1 replaces the whole secret');

    assert.equal(await ok('kv', 'get', 'old/foo'), '== Data ==\nKey    Value\n---    -----\nb      2\n');
    assert.equal(await ok('kv', 'get', '-field=b', 'old/foo'), '2');
    assert.deepEqual(JSON.parse(await ok('kv', 'get', '-format=json', 'old/foo')).data, { b: '2' });

    const patch = await cli('kv', 'patch', 'old/foo', 'c=3');
    assert.equal(patch.code, 1);
    assert.equal(patch.err, 'Error: kv patch is not supported on KV version 1 (mount old/)\n');

    assert.equal(await ok('kv', 'delete', 'old/foo'), 'Success! Data deleted (if it existed) at: old/foo\n');
    assert.equal((await api.call('GET', 'old/foo')).status, 404);
  });

  it('get prints metadata and data tables; -version, -format=json and -field', async () => {
    await api.call('PUT', 'secret/data/get/foo', { body: { data: { a: '1' } } });
    await api.call('PUT', 'secret/data/get/foo', { body: { data: { a: '2', b: 'x' } } });

    const table = await ok('kv', 'get', 'secret/get/foo');
    assert.match(table, /^=+ Secret Path =+\nsecret\/data\/get\/foo\n\n=+ Metadata =+\n/);
    assert.match(table, /^version +2$/m);
    assert.match(table, /\n== Data ==\nKey +Value\n-+ +-+\na +2\nb +x\n$/);

    const v1 = JSON.parse(await ok('kv', 'get', '-version=1', '-format=json', 'secret/get/foo'));
    assert.deepEqual(v1.data.data, { a: '1' });
    assert.equal(v1.data.metadata.version, 1);
    assert.match(await ok('kv', 'get', '-mount=secret', '-version', '1', 'get/foo'), /^a +1$/m);

    // -field prints the raw value with no newline (stdout is not a terminal).
    assert.equal(await ok('kv', 'get', '-field=a', 'secret/get/foo'), '2');
    const missing = await cli('kv', 'get', '-field=nope', 'secret/get/foo');
    assert.equal(missing.code, 1);
    assert.equal(missing.err, 'Error: Field "nope" not present in secret\n');
  });

  it('a missing secret is "No value found" with exit code 2', async () => {
    const r = await cli('kv', 'get', 'secret/none');
    assert.equal(r.code, 2);
    assert.equal(r.out, '');
    assert.equal(r.err, 'No value found at secret/data/none\n');
    assert.equal((await cli('kv', 'get', 'old/none')).err, 'No value found at old/none\n');
  });

  it('patch merges keys into a new version, with HTTP PATCH or -method=rw', async () => {
    await api.call('PUT', 'secret/data/patch/foo', { body: { data: { a: '1', b: '1' } } });
    assert.match(await ok('kv', 'patch', 'secret/patch/foo', 'b=2', 'c=3'), /^version +2$/m);
    assert.deepEqual(await kvData('secret/data/patch/foo'), { a: '1', b: '2', c: '3' });
    assert.match(await ok('kv', 'patch', '-method=rw', 'secret/patch/foo', 'a=9'), /^version +3$/m);
    assert.deepEqual(await kvData('secret/data/patch/foo'), { a: '9', b: '2', c: '3' });
    const stale = await cli('kv', 'patch', '-cas=1', 'secret/patch/foo', 'a=0');
    assert.equal(stale.code, 1);
    assert.match(stale.err, /^\* check-and-set parameter did not match the current version$/m);
    const absent = await cli('kv', 'patch', 'secret/patch/none', 'a=1');
    assert.equal(absent.code, 1);
    assert.match(absent.err, /^Error: patching secret\/data\/patch\/none: .*\n[\s\S]*Code: 404\./);
  });

  it('with a token limited by policy: preflight, put / get / list, and patch falling back to read-then-write', async () => {
    const rules =
      'path "secret/data/team/*" { capabilities = ["create", "read", "update"] }\n' +
      'path "secret/metadata/team/*" { capabilities = ["list"] }\n';
    await api.call('PUT', 'sys/policies/acl/team', { body: { policy: rules } });
    const { id } = await newToken({ policies: ['team'] });
    const team = (...args: string[]): Promise<Result> => cliWith({ env: { COFRE_TOKEN: id } }, ...args);

    assert.equal((await team('kv', 'put', 'secret/team/app', 'a=1', 'b=1')).code, 0);
    assert.equal((await team('kv', 'get', '-field=a', 'secret/team/app')).out, '1');
    assert.equal((await team('kv', 'list', 'secret/team')).out, 'Keys\n----\napp\n');
    // No "patch" capability: the server answers 403 to PATCH and the CLI reads, merges and writes, as Vault's does.
    const patched = await team('kv', 'patch', 'secret/team/app', 'b=2');
    assert.equal(patched.code, 0, patched.err);
    assert.equal(patched.err, 'Patching with HTTP PATCH failed; falling back to read-then-write.\n');
    assert.deepEqual(await kvData('secret/data/team/app'), { a: '1', b: '2' });
    assert.equal((await team('kv', 'patch', '-method=patch', 'secret/team/app', 'b=3')).code, 1);

    const denied = await team('kv', 'get', 'secret/elsewhere');
    assert.equal(denied.code, 1);
    assert.match(
      denied.err,
      /^Error: reading secret\/data\/elsewhere: Error making API request\.[\s\S]*Code: 403\. Errors:\n\n\* permission denied\n$/,
    );
  });

  it('delete -versions, undelete, destroy and delete act on the v2 endpoints', async () => {
    for (const v of ['1', '2', '3', '4']) await api.call('PUT', 'secret/data/ver/foo', { body: { data: { v } } });
    const versions = async (): Promise<Record<string, { deletion_time: string; destroyed: boolean }>> =>
      (await api.call('GET', 'secret/metadata/ver/foo')).body.data.versions;

    const del = await ok('kv', 'delete', '-versions=1,2', 'secret/ver/foo');
    assert.equal(del, 'Success! Data deleted (if it existed) at: secret/delete/ver/foo\n');
    assert.notEqual((await versions())['1']?.deletion_time, '');
    assert.notEqual((await versions())['2']?.deletion_time, '');

    const undel = await ok('kv', 'undelete', '-versions', '2', 'secret/ver/foo');
    assert.equal(undel, 'Success! Data written to: secret/undelete/ver/foo\n');
    assert.equal((await versions())['2']?.deletion_time, '');
    assert.notEqual((await versions())['1']?.deletion_time, '');

    assert.equal(
      await ok('kv', 'destroy', '-versions=3', '-mount=secret', 'ver/foo'),
      'Success! Data written to: secret/destroy/ver/foo\n',
    );
    assert.equal((await versions())['3']?.destroyed, true);
    assert.equal((await api.call('GET', 'secret/data/ver/foo?version=3')).body.data.data, null);

    // Without -versions: a soft delete of the latest version.
    assert.equal(
      await ok('kv', 'delete', 'secret/ver/foo'),
      'Success! Data deleted (if it existed) at: secret/data/ver/foo\n',
    );
    assert.notEqual((await versions())['4']?.deletion_time, '');
    assert.deepEqual(await kvData('secret/data/ver/foo?version=2'), { v: '2' });

    const v1Only = await cli('kv', 'undelete', '-versions=1', 'old/foo');
    assert.equal(v1Only.code, 1);
    assert.equal(v1Only.err, 'Error: kv undelete is not supported on KV version 1 (mount old/)\n');
    assert.equal((await cli('kv', 'delete', '-versions=1', 'old/foo')).code, 2);
    assert.equal((await cli('kv', 'destroy', 'secret/ver/foo')).code, 2, '-versions is required');
  });

  it('metadata put / patch / get / delete', async () => {
    await api.call('PUT', 'secret/data/meta/foo', { body: { data: { a: '1' } } });
    const put = await ok(
      'kv',
      'metadata',
      'put',
      '-max-versions=3',
      '-cas-required',
      '-delete-version-after=1h',
      '-custom-metadata=owner=me',
      'secret/meta/foo',
    );
    assert.equal(put, 'Success! Data written to: secret/metadata/meta/foo\n');
    let meta = (await api.call('GET', 'secret/metadata/meta/foo')).body.data;
    assert.equal(meta.max_versions, 3);
    assert.equal(meta.cas_required, true);
    assert.equal(meta.delete_version_after, '1h0m0s');
    assert.deepEqual(meta.custom_metadata, { owner: 'me' });

    // patch changes only what it is given; -cas-required=false is Vault's way to turn a boolean off.
    await ok('kv', 'metadata', 'patch', '-cas-required=false', 'secret/meta/foo');
    meta = (await api.call('GET', 'secret/metadata/meta/foo')).body.data;
    assert.equal(meta.cas_required, false);
    assert.equal(meta.max_versions, 3);
    assert.deepEqual(meta.custom_metadata, { owner: 'me' });

    const got = await ok('kv', 'metadata', 'get', 'secret/meta/foo');
    assert.match(got, /^=+ Metadata Path =+\nsecret\/metadata\/meta\/foo\n\n=+ Metadata =+\nKey +Value\n/);
    assert.match(got, /^max_versions +3$/m);
    assert.match(got, /^custom_metadata +map\[owner:me\]$/m);
    assert.match(got, /^=+ Version 1 =+\nKey +Value\n/m);
    assert.equal(JSON.parse(await ok('kv', 'metadata', 'get', '-format=json', 'secret/meta/foo')).data.max_versions, 3);

    assert.equal(
      await ok('kv', 'metadata', 'delete', 'secret/meta/foo'),
      'Success! Data deleted (if it existed) at: secret/metadata/meta/foo\n',
    );
    assert.equal((await api.call('GET', 'secret/metadata/meta/foo')).status, 404);
    assert.equal(
      (await cli('kv', 'metadata', 'get', 'secret/meta/foo')).err,
      'No value found at secret/metadata/meta/foo\n',
    );
  });

  it('list (LIST verb): keys and folders, a JSON array, exit 2 when empty', async () => {
    await api.call('PUT', 'secret/data/tree/a', { body: { data: { x: '1' } } });
    await api.call('PUT', 'secret/data/tree/sub/b', { body: { data: { x: '1' } } });
    await api.call('PUT', 'old/tree/c', { body: { x: '1' } });

    assert.equal(await ok('kv', 'list', 'secret/tree'), 'Keys\n----\na\nsub/\n');
    assert.deepEqual(JSON.parse(await ok('kv', 'list', '-format=json', '-mount=secret', 'tree')), ['a', 'sub/']);
    assert.equal(await ok('list', 'secret/metadata/tree'), 'Keys\n----\na\nsub/\n');
    assert.equal(await ok('kv', 'list', 'old/tree'), 'Keys\n----\nc\n');

    const none = await cli('kv', 'list', 'secret/nothing');
    assert.equal(none.code, 2);
    assert.equal(none.err, 'No value found at secret/metadata/nothing/\n');
  });
});

describe('generic read / write / list / delete, @file and stdin input', () => {
  it('write requires data unless -force, and prints the response or a success line', async () => {
    const empty = await cli('write', 'auth/token/create');
    assert.equal(empty.code, 2);
    assert.equal(empty.err, 'Error: Must supply data or use -force\n');

    const created = JSON.parse(await ok('write', '-f', '-format=json', 'auth/token/create'));
    assert.ok(await tokenAlive(created.auth.client_token));

    // A write the server answers with 204: Vault's success line. The token really revoked itself.
    const { id } = await newToken();
    const revoked = await cliWith({ env: { COFRE_TOKEN: id } }, 'write', '-force', 'auth/token/revoke-self');
    assert.equal(revoked.code, 0, revoked.err);
    assert.equal(revoked.out, 'Success! Data written to: auth/token/revoke-self\n');
    assert.equal(await tokenAlive(id), false);
  });

  it('read (with query parameters), read -field, list and delete on any path', async () => {
    const rules = 'path "gen/*" { capabilities = ["read"] }';
    assert.equal(
      await ok('write', 'sys/policies/acl/gen', `policy=${rules}`),
      'Success! Data written to: sys/policies/acl/gen\n',
    );
    assert.match(await ok('read', 'sys/policies/acl/gen'), /^Key +Value\n-+ +-+\nname +gen\npolicy +path "gen\/\*"/);
    assert.equal(await ok('read', '-field=policy', 'sys/policies/acl/gen'), rules);
    assert.equal(await ok('read', '-field=type', 'sys/mounts/secret'), 'kv');
    assert.ok(JSON.parse(await ok('list', '-format=json', 'sys/policies/acl')).includes('gen'));
    assert.equal(
      await ok('delete', 'sys/policies/acl/gen'),
      'Success! Data deleted (if it existed) at: sys/policies/acl/gen\n',
    );
    assert.equal((await api.call('GET', 'sys/policies/acl/gen')).status, 404);

    await api.call('PUT', 'secret/data/gen/foo', { body: { data: { v: '1' } } });
    await api.call('PUT', 'secret/data/gen/foo', { body: { data: { v: '2' } } });
    assert.equal(JSON.parse(await ok('read', '-format=json', 'secret/data/gen/foo', 'version=1')).data.data.v, '1');
    const none = await cli('read', 'secret/data/gen/none');
    assert.equal(none.code, 2);
    assert.equal(none.err, 'No value found at secret/data/gen/none\n');

    // A write the server answers 404 with only a warning (KV v2 wants data/) did nothing: as in Vault, an error,
    // with the warning printed after it.
    const warned = await cli('write', 'secret/gen/plain', 'a=b');
    assert.equal(warned.code, 1);
    assert.equal(warned.out, '');
    assert.equal(
      warned.err.split('\n  * ')[0],
      'Error: writing secret/gen/plain: Error making API request.\n\n' +
        `URL: PUT ${srv.url}/v1/secret/gen/plain\n` +
        'Code: 404. Errors:\n\nWARNING! The following warnings were returned from Cofre:\n',
    );
    assert.match(warned.err, /^ {2}\* Invalid path for a versioned K\/V secrets engine\..*'vault kv put'/m);
    const deleted = await cli('delete', 'secret/gen/plain');
    assert.equal(deleted.code, 1);
    assert.match(deleted.err, /Code: 404\. Errors:\n\nWARNING![\s\S]*'vault kv delete'/);
  });

  it('key=@file, key=\\@literal and @file.json', async () => {
    const pem = join(dir, 'cert.pem');
    writeFileSync(pem, '-----BEGIN X-----\nabc\n-----END X-----\n');
    await ok('kv', 'put', 'secret/in/file', `cert=@${pem}`, 'literal=\\@not-a-file');
    assert.deepEqual(await kvData('secret/data/in/file'), {
      cert: '-----BEGIN X-----\nabc\n-----END X-----\n',
      literal: '@not-a-file',
    });

    const obj = join(dir, 'obj.json');
    writeFileSync(obj, JSON.stringify({ user: 'u', n: 1, nested: { k: 'v' } }));
    await ok('kv', 'put', 'secret/in/json', `@${obj}`, 'extra=e');
    assert.deepEqual(await kvData('secret/data/in/json'), { user: 'u', n: 1, nested: { k: 'v' }, extra: 'e' });

    const missing = await cli('kv', 'put', 'secret/in/x', `a=@${join(dir, 'nope')}`);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /^Error: Error reading file .*nope: ENOENT/);
  });

  it('"-" reads a JSON object, and key=- a value, from stdin (only once)', async () => {
    const json = await cliWith({ stdin: '{"user":"admin","pass":"s3cret"}' }, 'kv', 'put', 'secret/in/stdin', '-');
    assert.equal(json.code, 0, json.err);
    assert.deepEqual(await kvData('secret/data/in/stdin'), { user: 'admin', pass: 's3cret' });

    const value = await cliWith({ stdin: 'multi\nline' }, 'kv', 'put', 'secret/in/value', 'text=-', 'k=v');
    assert.equal(value.code, 0, value.err);
    assert.deepEqual(await kvData('secret/data/in/value'), { text: 'multi\nline', k: 'v' });

    const twice = await cliWith({ stdin: 'x' }, 'kv', 'put', 'secret/in/x', 'a=-', 'b=-');
    assert.equal(twice.code, 2);
    assert.equal(twice.err, 'Error: Stdin can only be read once ("-" given twice)\n');
    const bad = await cliWith({ stdin: 'not json' }, 'kv', 'put', 'secret/in/x', '-');
    assert.equal(bad.code, 2);
    assert.match(bad.err, /^Error: Failed to parse JSON from stdin: /);
    assert.equal((await api.call('GET', 'secret/data/in/x')).status, 404);
  });
});

describe('token', () => {
  it('create sends the flags as Vault does: the token has them, and the table shows it', async () => {
    const r = await cli(
      'token',
      'create',
      '-policy=a',
      '-policy=b,c',
      '-ttl=1h',
      '-explicit-max-ttl=2h',
      '-renewable=false',
      '-orphan',
      '-use-limit=2',
      '-display-name=x',
      '-metadata=k=v',
    );
    assert.equal(r.code, 0, r.err);
    const token = /^token +(\S+)$/m.exec(r.out)?.[1] ?? '';
    assert.match(r.out, /^Key +Value\n-+ +-+\ntoken +\S+\ntoken_accessor +\S+\ntoken_duration +1h\n/);
    assert.match(r.out, /^token_renewable +false$/m);
    assert.match(r.out, /^token_policies +\["a" "b" "c" "default"\]$/m);
    assert.match(r.out, /^token_meta_k +v$/m);
    const looked = await api.call('POST', 'auth/token/lookup', { body: { token } });
    assert.equal(looked.status, 200, looked.text);
    const data = looked.body.data;
    assert.deepEqual(data.policies, ['a', 'b', 'c', 'default']);
    assert.equal(data.creation_ttl, 3600);
    assert.equal(data.explicit_max_ttl, 7200);
    assert.equal(data.renewable, false);
    assert.equal(data.orphan, true);
    assert.equal(data.num_uses, 2);
    assert.equal(data.display_name, 'token-x');
    assert.deepEqual(data.meta, { k: 'v' });

    const child = await ok('token', 'create', '-field=token');
    assert.doesNotMatch(child, /\n/);
    assert.ok(await tokenAlive(child));
    const bare = JSON.parse(await ok('token', 'create', '-format=json', '-no-default-policy', '-policy=a'));
    assert.deepEqual(bare.auth.policies, ['a']);
    assert.equal(bare.auth.orphan, false);
  });

  it('lookup (self, a token, an accessor) and renew', async () => {
    const { id, accessor } = await newToken({ policies: ['a'], ttl: '1h', display_name: 'look' });
    assert.match(await ok('token', 'lookup'), /^display_name +root$/m);
    const table = await ok('token', 'lookup', id);
    assert.match(table, /^display_name +token-look$/m);
    assert.match(table, /^policies +\[a default\]$/m);
    // "--" ends the flags: Cofre's accessors are base64url and one in 64 starts with "-" (see the note on newToken).
    const byAccessor = await ok('token', 'lookup', '-format=json', '-accessor', '--', accessor);
    assert.equal(JSON.parse(byAccessor).data.display_name, 'token-look');
    assert.equal(await ok('token', 'lookup', '-field=accessor', id), accessor);

    const renewed = JSON.parse(await ok('token', 'renew', '-increment=30m', '-format=json', id));
    assert.equal(renewed.auth.client_token, id);
    assert.equal(renewed.auth.lease_duration, 1800);
    const self = await cliWith({ env: { COFRE_TOKEN: id } }, 'token', 'renew', '-field=token_duration');
    assert.equal(self.code, 0, self.err);
    // As Vault, -field=token_duration is the raw number of seconds.
    assert.match(self.out, /^\d+$/);
    assert.ok(Number(self.out) > 1800 && Number(self.out) <= 3600, self.out);

    const bad = await cli('token', 'lookup', 'not-a-token');
    assert.equal(bad.code, 1);
    assert.match(bad.err, /^Error: writing auth\/token\/lookup: Error making API request\.\n/);
  });

  it('revoke: a token and its children, -mode=orphan, -accessor and -self', async () => {
    const parent = await newToken();
    const child = await newToken({}, parent.id);
    assert.equal(await ok('token', 'revoke', parent.id), 'Success! Revoked token (if it existed)\n');
    assert.equal(await tokenAlive(parent.id), false);
    assert.equal(await tokenAlive(child.id), false, 'revoking a token revokes its children');

    const parent2 = await newToken();
    const child2 = await newToken({}, parent2.id);
    await ok('token', 'revoke', '-mode=orphan', parent2.id);
    assert.equal(await tokenAlive(parent2.id), false);
    assert.equal(await tokenAlive(child2.id), true, '-mode=orphan leaves the children');

    await ok('token', 'revoke', '-accessor', '--', child2.accessor);
    assert.equal(await tokenAlive(child2.id), false);

    const self = await newToken();
    const r = await cliWith({ env: { COFRE_TOKEN: self.id } }, 'token', 'revoke', '-self');
    assert.equal(r.code, 0, r.err);
    assert.equal(await tokenAlive(self.id), false);

    assert.equal((await cli('token', 'revoke')).code, 2);
    assert.equal((await cli('token', 'revoke', '-self', 'x')).code, 2);
    assert.equal((await cli('token', 'revoke', '-mode=other', 'x')).code, 2);
  });
});

describe('secrets, policy, audit, operator', () => {
  it('auth enable / list / tune / disable, as Vault words them', async () => {
    assert.equal(
      await ok('auth', 'enable', '-path=k8s', 'kubernetes'),
      'Success! Enabled kubernetes auth method at: k8s/\n',
    );
    assert.match(await ok('auth', 'list'), /^k8s\/ +kubernetes +kubernetes_\S+ +n\/a$/m);
    assert.match(await ok('auth', 'list'), /^token\/ +token /m);
    assert.equal(
      await ok('auth', 'tune', '-default-lease-ttl=30m', 'k8s'),
      'Success! Tuned the auth method at: k8s/\n',
    );
    assert.equal((await api.call('GET', 'sys/auth/k8s/tune')).body.data.default_lease_ttl, 1800);
    assert.equal(await ok('auth', 'disable', 'k8s'), 'Success! Disabled the auth method (if it existed) at: k8s/\n');
    assert.doesNotMatch(await ok('auth', 'list'), /^k8s\//m);
  });

  it('secrets enable / list / tune / disable', async () => {
    const enabled = await ok(
      'secrets',
      'enable',
      '-path=kv1',
      '-version=2',
      '-options=x=y',
      '-default-lease-ttl=1h',
      '-description=apps',
      'kv',
    );
    assert.equal(enabled, 'Success! Enabled the kv secrets engine at: kv1/\n');
    const mount = (await api.call('GET', 'sys/mounts/kv1')).body.data;
    assert.equal(mount.type, 'kv');
    assert.equal(mount.description, 'apps');
    assert.deepEqual(mount.options, { x: 'y', version: '2' });
    assert.equal(mount.config.default_lease_ttl, 3600);
    // It is KV v2: kv put goes to kv1/data/.
    await ok('kv', 'put', 'kv1/app', 'a=b');
    assert.deepEqual(await kvData('kv1/data/app'), { a: 'b' });

    assert.match(await ok('secrets', 'list'), /^Path +Type +Accessor +Description\n-+ +-+ +-+ +-+\n/);
    assert.match(await ok('secrets', 'list'), /^kv1\/ +kv +kv_\S+ +apps$/m);
    assert.match(
      await ok('secrets', 'list', '-detailed'),
      /^kv1\/ +kv +kv_\S+ +1h +system +replicated +false +map\[version:2 x:y\] +apps /m,
    );
    assert.equal(JSON.parse(await ok('secrets', 'list', '-format=json'))['kv1/'].type, 'kv');

    assert.equal(
      await ok('secrets', 'tune', '-max-lease-ttl=2h', '-description=tuned', 'kv1'),
      'Success! Tuned the secrets engine at: kv1/\n',
    );
    const tuned = (await api.call('GET', 'sys/mounts/kv1/tune')).body.data;
    assert.equal(tuned.max_lease_ttl, 7200);
    assert.equal(tuned.description, 'tuned');

    const twice = await cli('secrets', 'enable', '-path=kv1', 'kv');
    assert.equal(twice.code, 1);
    assert.match(
      twice.err,
      /^Error: writing sys\/mounts\/kv1: Error making API request\.\n[\s\S]*Code: 400\. Errors:\n\n\* .*kv1/,
    );

    await ok('secrets', 'enable', '-path=kv2', 'kv-v2');
    assert.equal((await api.call('GET', 'sys/mounts/kv2')).body.data.options.version, '2');

    assert.equal(
      await ok('secrets', 'disable', 'kv1'),
      'Success! Disabled the secrets engine (if it existed) at: kv1/\n',
    );
    await ok('secrets', 'disable', 'kv2/');
    const mounts = (await api.call('GET', 'sys/mounts')).body.data;
    assert.ok(!('kv1/' in mounts) && !('kv2/' in mounts));
  });

  it('policy write (file, stdin) / read / list / delete', async () => {
    const rules = 'path "secret/data/app/*" {\n  capabilities = ["read"]\n}\n';
    const file = join(dir, 'app.hcl');
    writeFileSync(file, rules);
    assert.equal(await ok('policy', 'write', 'App-Read', file), 'Success! Uploaded policy: app-read\n');
    assert.equal((await api.call('GET', 'sys/policies/acl/app-read')).body.data.policy, rules);
    const piped = await cliWith({ stdin: rules.replace('read', 'list') }, 'policy', 'write', 'app-list', '-');
    assert.equal(piped.code, 0, piped.err);
    assert.match((await api.call('GET', 'sys/policies/acl/app-list')).body.data.policy, /"list"/);

    assert.equal(await ok('policy', 'read', 'app-read'), rules);
    assert.equal(JSON.parse(await ok('policy', 'read', '-format=json', 'app-read')).data.policy, rules);
    assert.match(await ok('policy', 'list'), /^app-list\napp-read\ndefault\n/m);
    assert.ok(JSON.parse(await ok('policy', 'list', '-format=json')).includes('app-read'));

    assert.equal(await ok('policy', 'delete', 'app-read'), 'Success! Deleted policy: app-read\n');
    assert.equal((await api.call('GET', 'sys/policies/acl/app-read')).status, 404);
    const gone = await cli('policy', 'read', 'app-read');
    assert.equal(gone.code, 2);
    assert.equal(gone.err, 'No policy named: app-read\n');
    const noFile = await cli('policy', 'write', 'x', join(dir, 'missing.hcl'));
    assert.equal(noFile.code, 1);
    assert.match(noFile.err, /^Error: Error opening policy file: ENOENT/);
    const invalid = await cliWith({ stdin: 'path "x" {' }, 'policy', 'write', 'broken', '-');
    assert.equal(invalid.code, 1);
    assert.match(
      invalid.err,
      /^Error: writing sys\/policies\/acl\/broken: Error making API request\.[\s\S]*Code: 400\./,
    );
  });

  it('audit enable / list / disable, and verify of the log the server wrote', async () => {
    const log = join(dir, 'audit.log');
    assert.equal(
      await ok('audit', 'enable', '-path=log', '-description=all requests', 'file', `file_path=${log}`),
      'Success! Enabled the file audit device at: log/\n',
    );
    await ok('kv', 'get', 'secret/get/foo');
    assert.equal(
      await ok('audit', 'list'),
      'Path    Type    Description\n----    ----    -----------\nlog/    file    all requests\n',
    );
    assert.equal(JSON.parse(await ok('audit', 'list', '-format=json'))['log/'].options.file_path, log);
    assert.equal(await ok('audit', 'disable', 'log'), 'Success! Disabled audit device (if it was enabled) at: log/\n');
    assert.deepEqual((await api.call('GET', 'sys/audit')).body.data, {});
    const none = await cli('audit', 'list');
    assert.equal(none.code, 2);
    assert.equal(none.out, 'No audit devices are enabled.\n');
    assert.deepEqual(JSON.parse(await ok('audit', 'list', '-format=json')), {});

    const lines = readFileSync(log, 'utf8').trim().split('\n');
    assert.ok(
      lines.some((l) => l.includes('secret/data/get/foo')),
      'the kv get was audited',
    );
    assert.equal(await ok('audit', 'verify', log), `OK: ${lines.length} lines, hash chain intact\n`);
    writeFileSync(log, lines.slice(1).join('\n') + '\n');
    const broken = await cli('audit', 'verify', log);
    assert.equal(broken.code, 1);
    assert.match(broken.err, /^FAILED at line 1: /);

    const bad = await cli('audit', 'enable', 'file', `file_path=${join(dir, 'no', 'such', 'dir', 'a.log')}`);
    assert.equal(bad.code, 1);
    assert.match(
      bad.err,
      /^Error: writing sys\/audit\/file: [\s\S]*Code: 400\. Errors:\n\n\* cannot enable audit device "file\/"/,
    );
  });

  it('operator key-status and rotate', async () => {
    const term = async (): Promise<number> => (await api.call('GET', 'sys/key-status')).body.data.term;
    const before = await term();
    assert.match(
      await ok('operator', 'key-status'),
      new RegExp(`^Key Term +${before}\\nInstall Time +\\d\\d \\w{3} \\d\\d \\d\\d:\\d\\d UTC\\n$`),
    );
    const rotated = await ok('operator', 'rotate');
    assert.match(rotated, new RegExp(`^Success! Rotated key\\n\\nKey Term +${before + 1}\\n`));
    assert.equal(await term(), before + 1);
    assert.equal(JSON.parse(await ok('operator', 'key-status', '-format=json')).term, before + 1);
  });
});

describe('environment and login', () => {
  it('address: -address, then COFRE_ADDR, then VAULT_ADDR', async () => {
    await api.call('PUT', 'secret/data/env/x', { body: { data: { a: 'here' } } });
    const read = (env: Record<string, string | undefined>, ...flags: string[]): Promise<Result> =>
      cliWith({ env }, 'kv', 'get', ...flags, '-field=a', 'secret/env/x');
    assert.equal((await read({ COFRE_ADDR: srv.url, VAULT_ADDR: DEAD })).out, 'here');
    assert.equal((await read({ COFRE_ADDR: undefined, VAULT_ADDR: srv.url })).out, 'here');
    assert.equal((await read({ COFRE_ADDR: DEAD, VAULT_ADDR: DEAD }, `-address=${srv.url}`)).out, 'here');
    const refused = await read({ COFRE_ADDR: DEAD, VAULT_ADDR: srv.url });
    assert.equal(refused.code, 1);
    assert.match(
      refused.err,
      /^Error: could not reach the server at http:\/\/127\.0\.0\.1:1 \(address from COFRE_ADDR\): /,
    );
  });

  it('token: COFRE_TOKEN, then VAULT_TOKEN, then the token helper file', async () => {
    const a = await newToken({ display_name: 'a' });
    const b = await newToken({ display_name: 'b' });
    const name = (env: Record<string, string | undefined>): Promise<Result> =>
      cliWith({ env }, 'token', 'lookup', '-field=display_name');
    assert.equal((await name({ COFRE_TOKEN: a.id, VAULT_TOKEN: b.id })).out, 'token-a');
    assert.equal((await name({ COFRE_TOKEN: undefined, VAULT_TOKEN: b.id })).out, 'token-b');
    writeFileSync(tokenFile, `${a.id}\n`);
    try {
      assert.equal((await name({ COFRE_TOKEN: undefined })).out, 'token-a');
    } finally {
      rmSync(tokenFile, { force: true });
    }
    const none = await name({ COFRE_TOKEN: undefined });
    assert.equal(none.code, 1);
    assert.match(none.err, /Code: 403\./);
  });

  it('format: -format, then COFRE_FORMAT, then VAULT_FORMAT', async () => {
    const status = (env: Record<string, string | undefined>, ...flags: string[]): Promise<Result> =>
      cliWith({ env }, 'status', ...flags);
    assert.equal(JSON.parse((await status({ COFRE_FORMAT: 'json', VAULT_FORMAT: 'table' })).out).sealed, false);
    assert.equal(JSON.parse((await status({ VAULT_FORMAT: 'json' })).out).sealed, false);
    assert.match((await status({ COFRE_FORMAT: 'json' }, '-format=table')).out, /^Sealed +false$/m);
    const bad = await status({ COFRE_FORMAT: 'yaml', VAULT_FORMAT: 'json' });
    assert.equal(bad.code, 2);
    assert.equal(bad.err, 'Error: Invalid output format: yaml (expected table or json)\n');
  });

  it('login checks the token, stores it (mode 0600) for later commands, and warns when COFRE_TOKEN is set', async () => {
    const { id } = await newToken({ display_name: 'login', policies: ['default'] });
    const r = await cliWith({ env: { COFRE_TOKEN: undefined } }, 'login', id);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.err, '');
    assert.match(r.out, /^Success! You are now authenticated\./);
    assert.match(r.out, new RegExp(`^token +${id.replace(/[.]/g, '\\.')}$`, 'm'));
    assert.match(r.out, /^token_policies +\["default"\]$/m);
    assert.equal(readFileSync(tokenFile, 'utf8'), id);
    assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
    const later = await cliWith({ env: { COFRE_TOKEN: undefined } }, 'token', 'lookup', '-field=display_name');
    assert.equal(later.out, 'token-login');

    const warned = await cli('login', '-no-store', id);
    assert.equal(warned.code, 0, warned.err);
    assert.match(warned.err, /^WARNING! The COFRE_TOKEN environment variable is set!/);

    const bad = await cliWith({ env: { COFRE_TOKEN: undefined } }, 'login', 'not-a-token');
    assert.equal(bad.code, 1);
    assert.match(bad.err, /^Error: looking up the token: Error making API request\.[\s\S]*Code: 403\./);
    assert.equal(readFileSync(tokenFile, 'utf8'), id, 'a refused token is not stored');
    rmSync(tokenFile, { force: true });
  });
});

describe('exit codes and errors', () => {
  it('usage errors exit 2', async () => {
    assert.equal((await cli('kv', 'get', '-bogus', 'x')).code, 2);
    const noData = await cli('kv', 'put', 'secret/foo');
    assert.equal(noData.code, 2);
    assert.equal(noData.err, 'Error: Must supply data\n');
    assert.match((await cli('nope')).err, /unknown command 'nope'/);
    assert.equal((await cli('nope')).code, 2);
    assert.equal((await cli('kv', 'get', '-format=xml', 'secret/foo')).code, 2);
    assert.equal((await cli('token', 'create', '-use-limit=x')).code, 2);
    assert.equal((await cli('token', 'create', '-ttl=soon')).code, 2);
    assert.equal((await cli('kv', 'put', 'secret/foo', 'novalue')).code, 2);
  });

  it('help and version exit 0', async () => {
    const help = await cli('kv', 'put', '--help');
    assert.equal(help.code, 0);
    assert.match(help.out, /Usage: cofre kv put/);
    assert.match(help.out, /Output Options:/);
    assert.equal((await cli('kv', 'put', '-help')).code, 0);
    const version = await cli('-version');
    assert.equal(version.code, 0);
    assert.match(version.out, /^\d+\.\d+\.\d+/);
  });

  it('API errors exit 1 with "Error: ...", the request and the server\'s errors', async () => {
    const { id } = await newToken({ policies: ['default'] });
    const r = await cliWith({ env: { COFRE_TOKEN: id } }, 'write', 'sys/policies/acl/x', 'policy=y');
    assert.equal(r.code, 1);
    assert.equal(r.out, '');
    assert.equal(
      r.err,
      'Error: writing sys/policies/acl/x: Error making API request.\n\n' +
        `URL: PUT ${srv.url}/v1/sys/policies/acl/x\n` +
        'Code: 403. Errors:\n\n* permission denied\n',
    );
    assert.equal((await api.call('GET', 'sys/policies/acl/x')).status, 404);
  });

  it('a 500 (every audit device failing) is an API error too', async () => {
    const other = await startServer();
    try {
      const logs = join(other.dir, 'logs');
      mkdirSync(logs);
      const env = { COFRE_ADDR: other.url, COFRE_TOKEN: other.rootToken };
      const enabled = await cliWith({ env }, 'audit', 'enable', 'file', `file_path=${join(logs, 'audit.log')}`);
      assert.equal(enabled.code, 0, enabled.err);
      // The device cannot reopen its file after an unseal: the server refuses every audited request.
      await other.api.call('PUT', 'sys/seal');
      rmSync(logs, { recursive: true });
      for (const key of other.keys.slice(0, 2)) await other.api.call('PUT', 'sys/unseal', { body: { key } });
      const r = await cliWith({ env }, 'read', 'sys/mounts/secret');
      assert.equal(r.code, 1);
      assert.equal(
        r.err,
        'Error: reading sys/mounts/secret: Error making API request.\n\n' +
          `URL: GET ${other.url}/v1/sys/mounts/secret\n` +
          'Code: 500. Errors:\n\n* internal error: no audit device could record the request, so it was refused\n',
      );
    } finally {
      await other.stop();
    }
  });
});

/** A loopback port nothing listens on (bound, then released), so a connection to it is refused. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** The ApiError text the CLI prints for a request the server answered with an error. */
function apiErrorText(what: string, method: string, url: string, code: number, errors: string[]): string {
  const list = errors.map((e) => `\n* ${e}`).join('');
  return `Error: ${what}: Error making API request.\n\nURL: ${method} ${url}\nCode: ${code}. Errors:\n${list}\n`;
}

describe('errors that point at the cause', () => {
  const noRoute = (path: string): string => `no handler for route "${path}". route entry not found.`;

  it("kv get / list / put / patch, read and list on a mount that does not exist show the server's error", async () => {
    const get = await cli('kv', 'get', 'nosuchmount/foo');
    assert.equal(get.code, 1);
    assert.equal(
      get.err,
      apiErrorText('reading nosuchmount/foo', 'GET', `${srv.url}/v1/nosuchmount/foo`, 404, [
        noRoute('nosuchmount/foo'),
      ]),
    );
    const read = await cli('read', 'nosuchmount/foo');
    assert.equal(read.code, 1);
    assert.equal(read.err, get.err, 'generic read shows the same error');

    const kvList = await cli('kv', 'list', 'nosuchmount/dir');
    assert.equal(kvList.code, 1);
    assert.match(
      kvList.err,
      /^Error: listing nosuchmount\/dir\/: [\s\S]*Code: 404\. Errors:\n\n\* no handler for route/,
    );
    const list = await cli('list', 'nosuchmount/dir');
    assert.equal(list.code, 1);
    assert.match(list.err, /^Error: listing nosuchmount\/dir\/: [\s\S]*\* no handler for route "nosuchmount\/dir\/"/);

    const put = await cli('kv', 'put', 'nosuchmount/foo', 'a=1');
    assert.equal(put.code, 1);
    assert.match(put.err, /^Error: writing nosuchmount\/foo: [\s\S]*\* no handler for route "nosuchmount\/foo"/);
    for (const args of [
      ['kv', 'patch', 'nosuchmount/foo', 'a=1'],
      ['kv', 'metadata', 'get', 'nosuchmount/foo'],
      ['kv', 'undelete', '-versions=1', 'nosuchmount/foo'],
    ]) {
      const r = await cli(...args);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.err, /^Error: kv [a-z ]+: found no KV version 2 mount for nosuchmount\/foo\n$/, args.join(' '));
    }
  });

  it('"No value found" (exit 2) stays for a missing key on an existing mount, KV v2 and v1, and its reads', async () => {
    for (const [args, path] of [
      [['kv', 'get', 'secret/absent'], 'secret/data/absent'],
      [['kv', 'get', 'old/absent'], 'old/absent'],
      [['kv', 'metadata', 'get', 'secret/absent'], 'secret/metadata/absent'],
      [['kv', 'list', 'secret/absent'], 'secret/metadata/absent/'],
      [['read', 'secret/data/absent'], 'secret/data/absent'],
      [['list', 'old/absent'], 'old/absent/'],
    ] as const) {
      const r = await cli(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      assert.equal(r.err, `No value found at ${path}\n`, args.join(' '));
    }
  });

  it('a refused token names the path asked for and the API path that refused it, not a guessed KV v1 path', async () => {
    await api.call('PUT', 'secret/data/app/db', { body: { data: { password: 'x' } } });
    for (const [args, refusedAt] of [
      [['kv', 'get', 'secret/app/db'], 'sys/internal/ui/mounts/secret/app/db'],
      [['kv', 'put', 'secret/app/db', 'a=1'], 'sys/internal/ui/mounts/secret/app/db'],
      [['kv', 'list', '-mount=secret', 'app'], 'sys/internal/ui/mounts/secret'],
    ] as const) {
      const r = await cliWith({ env: { COFRE_TOKEN: 'not-a-token' } }, ...args);
      assert.equal(r.code, 1, args.join(' '));
      const asked = args[2] === '-mount=secret' ? 'secret' : 'secret/app/db';
      assert.equal(
        r.err,
        apiErrorText(`finding the KV mount of ${asked}`, 'GET', `${srv.url}/v1/${refusedAt}`, 403, [
          'permission denied: invalid or expired token',
        ]),
        args.join(' '),
      );
    }
    // A token without access to the mount table (it may read secret/data/app/* only) still reaches its secret.
    await api.call('PUT', 'sys/policies/acl/app-db', {
      body: { policy: 'path "secret/data/app/*" { capabilities = ["read"] }' },
    });
    const { id } = await newToken({ policies: ['app-db'] });
    assert.equal(
      (await cliWith({ env: { COFRE_TOKEN: id } }, 'kv', 'get', '-field=password', 'secret/app/db')).out,
      'x',
    );
  });

  it('a server nobody listens on: "could not reach", the address and where it came from, and no internal request', async () => {
    const down = `http://127.0.0.1:${await closedPort()}`;
    const refused = (from: string): RegExp =>
      new RegExp(
        `^Error: could not reach the server at ${down.replace(/\./g, '\\.')} \\(address from ${from}\\): ` +
          'connection refused \\(ECONNREFUSED\\): is the server running and listening there\\?\\n$',
      );
    const viaCofre = await cliWith({ env: { COFRE_ADDR: down } }, 'kv', 'get', 'secret/app/db');
    assert.equal(viaCofre.code, 1);
    assert.match(viaCofre.err, refused('COFRE_ADDR'));
    assert.doesNotMatch(viaCofre.err, /preflight|sys\/internal/);
    const viaVault = await cliWith({ env: { COFRE_ADDR: undefined, VAULT_ADDR: down } }, 'read', 'secret/data/x');
    assert.match(viaVault.err, refused('VAULT_ADDR'));
    const viaFlag = await cli('kv', 'put', `-address=${down}`, 'secret/app/db', 'a=1');
    assert.match(viaFlag.err, refused('-address'));
    const snapshot = await cli('operator', 'snapshot', 'save', `-address=${down}`, join(dir, 'never.snap'));
    assert.match(snapshot.err, refused('-address'), 'the streaming requests say the same');
  });

  it('a host name that does not resolve, and TLS spoken to a plain HTTP server, are named as such', async () => {
    const dns = await cliWith({ env: { COFRE_ADDR: 'http://no-such-host.invalid:8200' } }, 'status');
    assert.equal(dns.code, 1);
    assert.match(
      dns.err,
      /^Error: could not reach the server at http:\/\/no-such-host\.invalid:8200 \(address from COFRE_ADDR\): the host name does not resolve \(DNS: getaddrinfo \w+ no-such-host\.invalid\)\n$/,
    );
    const tls = await cliWith({ env: { COFRE_ADDR: srv.url.replace('http:', 'https:') } }, 'kv', 'get', 'secret/x');
    assert.match(
      tls.err,
      /\(address from COFRE_ADDR\): TLS failed: the server does not speak TLS there \(try http:\/\/\)\n$/,
    );
  });
});

describe('seal status, init and unseal (a server of their own)', () => {
  it('status exits 2 while sealed; operator unseal takes the key shares; operator seal', async () => {
    const other = await startServer();
    try {
      const at = `-address=${other.url}`;
      const env = { COFRE_ADDR: DEAD, COFRE_TOKEN: other.rootToken };
      const cofre = (...args: string[]): Promise<Result> => cliWith({ env }, ...args);
      const unsealed = await cofre('status', at);
      assert.equal(unsealed.code, 0, unsealed.err);
      assert.match(
        unsealed.out,
        /^Key +Value\n-+ +-+\nSeal Type +shamir\nInitialized +true\nSealed +false\nTotal Shares +3\nThreshold +2\n/,
      );
      assert.doesNotMatch(unsealed.out, /Unseal Progress/);

      await other.api.call('PUT', 'sys/seal');
      const sealed = await cofre('status', at);
      assert.equal(sealed.code, 2);
      assert.equal(sealed.err, '');
      assert.match(sealed.out, /^Sealed +true$/m);
      assert.match(sealed.out, /^Unseal Progress +0\/2$/m);
      const refused = await cofre('kv', 'get', at, 'secret/x');
      assert.equal(refused.code, 1);
      assert.match(refused.err, /Code: 503\. Errors:\n\n\* Vault is sealed\n$/);

      const first = await cofre('operator', 'unseal', at, other.keys[0] ?? '');
      assert.equal(first.code, 0, first.err);
      assert.match(first.out, /^Unseal Progress +1\/2$/m);
      const json = await cofre('status', at, '-format=json');
      assert.equal(json.code, 2);
      assert.equal(JSON.parse(json.out).progress, 1);
      assert.match((await cofre('operator', 'unseal', at, '-reset')).out, /^Unseal Progress +0\/2$/m);
      await cofre('operator', 'unseal', at, other.keys[0] ?? '');
      const second = await cofre('operator', 'unseal', at, other.keys[1] ?? '');
      assert.match(second.out, /^Sealed +false$/m);
      assert.equal((await cofre('status', at)).code, 0);
      const wrong = await cofre('operator', 'unseal', at, 'not-a-key');
      assert.equal(wrong.code, 1);
      assert.match(wrong.err, /^Error: unsealing: Error making API request\.[\s\S]*Code: 400\./);

      assert.equal((await cofre('operator', 'seal', at)).out, 'Success! Cofre is sealed.\n');
      assert.equal((await other.api.call('GET', 'sys/seal-status')).body.sealed, true);
    } finally {
      await other.stop();
    }
  });

  it('operator init on a new server, then unseal and use the root token', async () => {
    const other = await startServer({ initialised: false });
    try {
      const at = `-address=${other.url}`;
      const env = { COFRE_ADDR: DEAD, COFRE_TOKEN: undefined };
      const status = await cliWith({ env }, 'operator', 'init', '-status', at);
      assert.equal(status.code, 2);
      assert.equal(status.out, 'Cofre is not initialized\n');
      assert.match((await cliWith({ env }, 'status', at)).out, /^Initialized +false$/m);

      const init = await cliWith({ env }, 'operator', 'init', '-key-shares=1', '-key-threshold=1', at);
      assert.equal(init.code, 0, init.err);
      const key = /^Unseal Key 1: (\S+)$/m.exec(init.out)?.[1] ?? '';
      const root = /^Initial Root Token: (\S+)$/m.exec(init.out)?.[1] ?? '';
      assert.ok(key && root, init.out);
      assert.match(init.out, /Cofre initialized with 1 key shares and a key threshold of 1\./);
      assert.equal((await cliWith({ env }, 'operator', 'init', '-status', at)).code, 0);
      assert.equal((await cliWith({ env }, 'operator', 'init', at)).code, 1, 'a second init is refused');

      assert.match((await cliWith({ env }, 'operator', 'unseal', at, key)).out, /^Sealed +false$/m);
      const lookup = await cliWith({ env: { ...env, COFRE_TOKEN: root } }, 'token', 'lookup', '-format=json', at);
      assert.deepEqual(JSON.parse(lookup.out).data.policies, ['root']);
    } finally {
      await other.stop();
    }
  });
});
