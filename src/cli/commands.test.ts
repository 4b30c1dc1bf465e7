import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { stdio } from './output.js';
import type { Streams } from './output.js';
import { buildProgram, run } from './program.js';

interface Seen {
  method: string;
  path: string;
  query: string;
  body: unknown;
}

/** A fake server: secret/ is KV v2, old/ is KV v1, and there is no sys/internal/ui/mounts (as in older servers). */
const seen: Seen[] = [];
let sealed = false;
let server: Server;
const dir = mkdtempSync(join(tmpdir(), 'cofre-cmd-'));
const savedEnv = { ...process.env };

function reply(res: ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) res.writeHead(status).end();
  else res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

before(async () => {
  server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const path = url.pathname.replace(/^\/v1\//, '');
      seen.push({ method: req.method ?? '', path, query: url.search, body: raw ? JSON.parse(raw) : undefined });
      if (path.startsWith('sys/internal/ui/mounts')) return reply(res, 404, { errors: ['unsupported path'] });
      if (path === 'sys/mounts' && req.method === 'GET') {
        return reply(res, 200, {
          data: { 'secret/': { type: 'kv', options: { version: '2' } }, 'old/': { type: 'kv' } },
        });
      }
      if (path === 'sys/seal-status') {
        return reply(res, 200, { type: 'shamir', initialized: true, sealed, t: 3, n: 5, progress: 1, nonce: 'n' });
      }
      if (path === 'secret/data/foo' && req.method === 'PUT') {
        return reply(res, 200, { data: { version: 1, created_time: 't', deletion_time: '', destroyed: false } });
      }
      if (path === 'secret/data/foo' && req.method === 'GET') {
        return reply(res, 200, { data: { data: { a: '1' }, metadata: { version: 3 } } });
      }
      if (path === 'auth/token/create') {
        return reply(res, 200, {
          auth: { client_token: 's.new', accessor: 'acc', policies: ['a'], lease_duration: 3600, renewable: true },
        });
      }
      if (path === 'boom') return reply(res, 500, { errors: ['internal error'] });
      if (req.method === 'GET') return reply(res, 404, { errors: [] });
      reply(res, 204);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.env.COFRE_ADDR = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  process.env.COFRE_TOKEN = 'root';
  process.env.COFRE_TOKEN_FILE = join(dir, 'token');
  delete process.env.COFRE_FORMAT;
  delete process.env.VAULT_FORMAT;
});

after(async () => {
  process.env = savedEnv;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  seen.length = 0;
  sealed = false;
});

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const saved: Streams = { stdout: stdio.stdout, stderr: stdio.stderr };
  stdio.stdout = { write: (s: string) => (out += s) };
  stdio.stderr = { write: (s: string) => (err += s) };
  try {
    const code = await run(buildProgram(), args);
    return { code, out, err };
  } finally {
    Object.assign(stdio, saved);
  }
}

const writes = (): Seen[] => seen.filter((s) => !s.path.startsWith('sys/'));

describe('kv', () => {
  it('put rewrites KV v2 paths to data/ and sends cas', async () => {
    const r = await cli('kv', 'put', '-cas=0', 'secret/foo', 'a=1');
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(writes(), [
      { method: 'PUT', path: 'secret/data/foo', query: '', body: { data: { a: '1' }, options: { cas: 0 } } },
    ]);
    assert.match(r.out, /^= Secret Path =\nsecret\/data\/foo\n\n=+ Metadata =+\nKey +Value\n/);
    assert.match(r.out, /^deletion_time +n\/a$/m);
  });

  it('put with -mount, and on KV v1 without rewriting', async () => {
    await cli('kv', 'put', '-mount=secret', 'foo', 'a=1');
    assert.equal(writes()[0]?.path, 'secret/data/foo');
    seen.length = 0;
    const r = await cli('kv', 'put', 'old/foo', 'a=1');
    assert.deepEqual(writes(), [{ method: 'PUT', path: 'old/foo', query: '', body: { a: '1' } }]);
    assert.equal(r.out, 'Success! Data written to: old/foo\n');
  });

  it('get -version -format=json prints the parsable response; -field the raw value', async () => {
    const r = await cli('kv', 'get', '-version=3', '-format=json', 'secret/foo');
    assert.equal(r.code, 0, r.err);
    assert.equal(writes()[0]?.query, '?version=3');
    assert.deepEqual(JSON.parse(r.out).data.data, { a: '1' });
    assert.equal((await cli('kv', 'get', '-field=a', 'secret/foo')).out, '1');
  });

  it('delete -versions, undelete, destroy and metadata put use the v2 endpoints', async () => {
    await cli('kv', 'delete', '-versions=1,2', 'secret/foo');
    await cli('kv', 'undelete', '-versions', '3', 'secret/foo');
    await cli('kv', 'destroy', '-versions=4', 'secret/foo');
    await cli('kv', 'metadata', 'put', '-max-versions=3', '-cas-required=false', 'secret/foo');
    await cli('kv', 'delete', 'secret/foo');
    assert.deepEqual(
      writes().map((s) => [s.method, s.path, s.body]),
      [
        ['PUT', 'secret/delete/foo', { versions: [1, 2] }],
        ['PUT', 'secret/undelete/foo', { versions: [3] }],
        ['PUT', 'secret/destroy/foo', { versions: [4] }],
        ['POST', 'secret/metadata/foo', { max_versions: 3, cas_required: false }],
        ['DELETE', 'secret/data/foo', undefined],
      ],
    );
  });

  it('a missing secret is "No value found" with exit code 2', async () => {
    const r = await cli('kv', 'get', 'secret/none');
    assert.equal(r.code, 2);
    assert.equal(r.err, 'No value found at secret/data/none\n');
  });
});

describe('token, secrets, write', () => {
  it('token create sends the flags as Vault does', async () => {
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
    assert.deepEqual(writes()[0]?.body, {
      renewable: false,
      policies: ['a', 'b', 'c'],
      ttl: '1h',
      explicit_max_ttl: '2h',
      num_uses: 2,
      no_parent: true,
      display_name: 'x',
      meta: { k: 'v' },
    });
    assert.match(r.out, /^token +s\.new$/m);
    assert.match(r.out, /^token_duration +1h$/m);
    assert.equal((await cli('token', 'create', '-field=token')).out, 's.new');
  });

  it('token revoke picks the endpoint from the flags', async () => {
    await cli('token', 'revoke', 't1');
    await cli('token', 'revoke', '-mode=orphan', 't2');
    await cli('token', 'revoke', '-accessor', 'a3');
    await cli('token', 'revoke', '-self');
    assert.deepEqual(
      writes().map((s) => [s.path, s.body]),
      [
        ['auth/token/revoke', { token: 't1' }],
        ['auth/token/revoke-orphan', { token: 't2' }],
        ['auth/token/revoke-accessor', { accessor: 'a3' }],
        ['auth/token/revoke-self', {}],
      ],
    );
  });

  it('secrets enable builds the mount request', async () => {
    const r = await cli('secrets', 'enable', '-path=kv1', '-version=2', '-options=x=y', '-default-lease-ttl=1h', 'kv');
    assert.equal(r.out, 'Success! Enabled the kv secrets engine at: kv1/\n');
    assert.deepEqual(seen.at(-1), {
      method: 'POST',
      path: 'sys/mounts/kv1',
      query: '',
      body: { type: 'kv', description: '', config: { default_lease_ttl: '1h' }, options: { x: 'y', version: '2' } },
    });
  });

  it('write requires data unless -force', async () => {
    assert.equal((await cli('write', 'secret/x')).code, 2);
    const r = await cli('write', '-f', 'secret/x');
    assert.equal(r.code, 0);
    assert.equal(r.out, 'Success! Data written to: secret/x\n');
  });
});

describe('exit codes and errors', () => {
  it('usage errors exit 2', async () => {
    assert.equal((await cli('kv', 'get', '-bogus', 'x')).code, 2);
    assert.equal((await cli('kv', 'put', 'secret/foo')).code, 2);
    assert.equal((await cli('nope')).code, 2);
    assert.equal((await cli('kv', 'get', '-format=xml', 'secret/foo')).code, 2);
    assert.equal((await cli('token', 'create', '-use-limit=x')).code, 2);
  });

  it('help and version exit 0', async () => {
    const help = await cli('kv', 'put', '--help');
    assert.equal(help.code, 0);
    assert.match(help.out, /Usage: cofre kv put/);
    assert.match(help.out, /Output Options:/);
    assert.equal((await cli('-version')).code, 0);
  });

  it('API errors exit 1 with "Error: ..." and the server errors', async () => {
    const r = await cli('write', 'boom', 'a=b');
    assert.equal(r.code, 1);
    assert.match(r.err, /^Error: writing boom: Error making API request\./);
    assert.match(r.err, /\* internal error/);
  });

  it('status exits 2 when sealed', async () => {
    assert.equal((await cli('status')).code, 0);
    sealed = true;
    const r = await cli('status');
    assert.equal(r.code, 2);
    assert.match(r.out, /^Unseal Progress +1\/3$/m);
  });
});
