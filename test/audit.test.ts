import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { verifyLines } from '../src/core/audit-chain.js';
import { enableFileAudit, type InProcessServer, startServer, tempDir } from './support.js';

function cofre(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const res = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8' });
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

describe('audit', () => {
  let srv: InProcessServer;
  let logFile = '';
  const secretValue = 'audit-secret-VALUE-7788';
  const numericPin = 918273;
  before(async () => {
    srv = await startServer();
    logFile = join(srv.dir, 'audit.log');
    await enableFileAudit(srv.api, logFile);
  });
  after(() => srv.stop());

  it('records requests and responses with every value HMAC-ed', async () => {
    await srv.api.call('POST', 'secret/data/audited', { body: { data: { password: secretValue, pin: numericPin } } });
    const read = await srv.api.call('GET', 'secret/data/audited');
    assert.equal(read.body.data.data.password, secretValue);
    const token = await srv.api.call('POST', 'auth/token/create', { body: { policies: ['default'] } });
    const created = token.body.auth.client_token as string;
    const lines = readFileSync(logFile, 'utf8').trim().split('\n');
    assert.ok(lines.length >= 6, `only ${lines.length} lines`);
    const text = lines.join('\n');
    for (const clear of [secretValue, String(numericPin), srv.rootToken, created, token.body.auth.accessor]) {
      assert.equal(text.includes(clear), false, `${clear} in audit log`);
    }
    // The hashes are really there: sys/audit-hash of the value is found in the log.
    const hash = await srv.api.call('POST', 'sys/audit-hash/file', { body: { input: secretValue } });
    assert.match(hash.body.data.hash, /^hmac-sha256:[0-9a-f]{64}$/);
    assert.ok(text.includes(hash.body.data.hash));
    const entries = lines.map((l) => JSON.parse(l));
    const response = entries.find(
      (e) => e.type === 'response' && e.request.path === 'secret/data/audited' && e.request.operation === 'read',
    );
    assert.equal(response.response.data.data.password, hash.body.data.hash);
    assert.equal(response.request.client_token.startsWith('hmac-sha256:'), true);
  });

  it('each caller’s token and accessor are on record under their own HMACs, tokens interleaved and in parallel', async () => {
    const hashOf = async (input: string): Promise<string> =>
      (await srv.api.call('POST', 'sys/audit-hash/file', { body: { input } })).body.data.hash as string;
    const callers: { token: string; accessor: string; path: string }[] = [];
    for (const [i, type] of ['service', 'batch', 'service', 'batch', 'service', 'service'].entries()) {
      const res = await srv.api.call('POST', 'auth/token/create', { body: { policies: ['default'], type } });
      assert.equal(res.status, 200, res.text);
      callers.push({ token: res.body.auth.client_token, accessor: res.body.auth.accessor, path: `me-${i}` });
    }
    // Wrapping tokens call too, interleaved with the others: each unwraps its own response (its one use).
    const wrapped: { token: string; accessor: string }[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await srv.api.call('POST', 'sys/wrapping/wrap', {
        body: { n: String(i) },
        headers: { 'X-Vault-Wrap-TTL': '5m' },
      });
      assert.equal(res.status, 200, res.text);
      wrapped.push({ token: res.body.wrap_info.token, accessor: res.body.wrap_info.accessor });
    }
    // Each caller asks for its own cubbyhole path, all at once and twice over: every entry names its caller.
    const [, unwrapped] = await Promise.all([
      Promise.all([...callers, ...callers].map((c) => srv.api.call('GET', `cubbyhole/${c.path}`, { token: c.token }))),
      Promise.all(wrapped.map((w) => srv.api.call('POST', 'sys/wrapping/unwrap', { token: w.token }))),
    ]);
    unwrapped.forEach((res, i) => assert.equal(res.body?.data?.n, String(i), res.text));
    const entries = readFileSync(logFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    for (const c of callers) {
      const mine = entries.filter((e) => e.request.path === `cubbyhole/${c.path}`);
      assert.equal(mine.length, 4, `${c.path}: ${mine.length} entries`);
      const token = await hashOf(c.token);
      for (const e of mine) {
        assert.equal(e.request.client_token, token, `${c.path}: another caller's token HMAC`);
        assert.equal(e.auth.client_token, token);
        // Batch tokens have no accessor (Vault's too); a service token's is HMAC'd like the token.
        assert.equal(e.request.client_token_accessor, c.accessor ? await hashOf(c.accessor) : await hashOf(''));
      }
    }
    const unwraps = entries.filter((e) => e.request.path === 'sys/wrapping/unwrap');
    assert.equal(unwraps.length, 2 * wrapped.length);
    for (const w of wrapped) {
      const token = await hashOf(w.token);
      const mine = unwraps.filter((e) => e.request.client_token === token);
      assert.equal(mine.length, 2, "a wrapping token's request and response are on record under its own HMAC");
      for (const e of mine) assert.equal(e.request.client_token_accessor, await hashOf(w.accessor));
    }
  });

  it('a refused request is on record with its error', async () => {
    await srv.api.call('GET', 'secret/data/audited', { token: 'cvs.not-a-token' });
    const last = readFileSync(logFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .pop();
    assert.equal(last.type, 'response');
    assert.match(last.error, /permission denied/);
    assert.equal(JSON.stringify(last).includes('cvs.not-a-token'), false);
  });

  it('cofre audit verify passes on the intact log and fails on an edited, removed or reordered line', () => {
    const ok = cofre('audit', 'verify', logFile);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /OK: \d+ lines/);
    const lines = readFileSync(logFile, 'utf8').trim().split('\n');
    const tamper = (name: string, changed: string[]) => {
      const file = join(srv.dir, `${name}.log`);
      writeFileSync(file, changed.join('\n') + '\n');
      const res = cofre('audit', 'verify', file);
      assert.equal(res.status, 1, `${name} not detected`);
      assert.match(res.stderr, /FAILED at line \d+/);
    };
    const edit = (l: string) => l.replace(/"time":"[^"]*"/, '"time":"2000-01-01T00:00:00.000Z"');
    assert.notEqual(edit(lines[2]!), lines[2]);
    tamper(
      'edited',
      lines.map((l, i) => (i === 2 ? edit(l) : l)),
    );
    tamper(
      'removed',
      lines.filter((_, i) => i !== 3),
    );
    tamper('reordered', [lines[0]!, lines[2]!, lines[1]!, ...lines.slice(3)]);
    tamper('first removed', lines.slice(1));
  });

  it('keys named like built-in object properties stay in the record, as data', async () => {
    const keys = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'];
    const data = Object.fromEntries(keys.map((k) => [k, `value-of-${k}`]));
    // Written as JSON text, so that "__proto__" is a plain key, as any client's JSON would carry it.
    const raw = `{"data":{${keys.map((k) => `"${k}":"value-of-${k}"`).join(',')}},"__proto__":{"polluted":"yes"}}`;
    const res = await srv.api.call('POST', 'secret/data/proto-keys', {
      raw,
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(res.status, 200, res.text);
    const hashes = await Promise.all(
      Object.values(data).map(
        async (v) => (await srv.api.call('POST', 'sys/audit-hash/file', { body: { input: v } })).body.data.hash,
      ),
    );
    const request = readFileSync(logFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .find((e) => e.type === 'request' && e.request.path === 'secret/data/proto-keys');
    // JSON.parse gives "__proto__" as an own key too; compare key lists, not through property lookups.
    assert.deepEqual(Object.keys(request.request.data.data), keys);
    assert.deepEqual(Object.values(request.request.data.data), hashes);
    assert.ok(Object.keys(request.request.data).includes('__proto__'));
    assert.match(request.request.data.__proto__.polluted, /^hmac-sha256:/);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('audit device types and options named like object members are plain names', async () => {
    for (const type of ['constructor', 'toString', '__proto__']) {
      const res = await srv.api.call('PUT', 'sys/audit/odd', { body: { type, options: {} } });
      assert.equal(res.status, 400, `${type}: ${res.text}`);
      assert.match(res.text, /unknown audit device type/);
    }
    const dir = tempDir('audit-proto-options');
    const raw = `{"type":"file","options":{"file_path":"${dir}/a.log","__proto__":"x"}}`;
    const res = await srv.api.call('PUT', 'sys/audit/proto-options', {
      raw,
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(res.status, 204, res.text);
    const listed = await srv.api.call('GET', 'sys/audit');
    assert.ok(Object.hasOwn(listed.body.data['proto-options/'].options, '__proto__'), listed.text);
    assert.equal((await srv.api.call('DELETE', 'sys/audit/proto-options')).status, 204);
  });

  it('sys/seal answers 204 with an audit device on, and the seal is on record', async () => {
    const sealed = await srv.api.call('PUT', 'sys/seal');
    assert.equal(sealed.status, 204, sealed.text);
    const seal = readFileSync(logFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((e) => e.request.path === 'sys/seal');
    assert.deepEqual(
      seal.map((e) => [e.type, e.response?.status]),
      [
        ['request', undefined],
        ['response', 204],
      ],
    );
    for (const key of srv.keys.slice(0, 2)) await srv.api.call('PUT', 'sys/unseal', { body: { key } });
  });

  it('the chain continues across a seal and unseal (device reopened)', async () => {
    await srv.api.call('PUT', 'sys/seal');
    for (const key of srv.keys.slice(0, 2)) await srv.api.call('PUT', 'sys/unseal', { body: { key } });
    await srv.api.call('GET', 'secret/data/audited');
    assert.equal(cofre('audit', 'verify', logFile).status, 0);
  });

  it('lists devices; a second device gets the same requests', async () => {
    const list = await srv.api.call('GET', 'sys/audit');
    assert.equal(list.body.data['file/'].type, 'file');
    assert.equal(list.body.data['file/'].options.file_path, logFile);
    const extra = join(srv.dir, 'extra.log');
    assert.equal(
      (await srv.api.call('PUT', 'sys/audit/extra', { body: { type: 'file', options: { file_path: extra } } })).status,
      204,
    );
    assert.equal((await srv.api.call('GET', 'secret/data/audited')).status, 200);
    assert.ok(readFileSync(extra, 'utf8').includes('secret/data/audited'));
    assert.equal((await srv.api.call('DELETE', 'sys/audit/extra')).status, 204);
  });

  const refusedRead = async (other: InProcessServer) => {
    const read = await other.api.call('GET', 'secret/data/x');
    assert.equal(read.status, 500);
    assert.equal(read.text.includes(secretValue), false);
    assert.match(read.body.errors[0], /audit/);
    const write = await other.api.call('POST', 'secret/data/x', { body: { data: { v: 'changed' } } });
    assert.equal(write.status, 500);
  };

  it('fail-closed: with the audit file unwritable a read is refused and returns nothing', async () => {
    const other = await startServer();
    try {
      await other.api.call('POST', 'secret/data/x', { body: { data: { v: secretValue } } });
      const file = join(other.dir, 'audit.log');
      assert.equal(
        (await other.api.call('PUT', 'sys/audit/file', { body: { type: 'file', options: { file_path: file } } }))
          .status,
        204,
      );
      assert.equal((await other.api.call('GET', 'secret/data/x')).status, 200);
      // While sealed, the log file is replaced by a directory: it cannot be opened for writing any more.
      await other.api.call('PUT', 'sys/seal');
      rmSync(file);
      mkdirSync(file);
      for (const key of other.keys.slice(0, 2)) await other.api.call('PUT', 'sys/unseal', { body: { key } });
      await refusedRead(other);
    } finally {
      await other.stop();
    }
  });

  it('fail-closed: when the only (socket) device loses its collector, requests are refused', async () => {
    const other = await startServer();
    const received: string[] = [];
    const sockets: Socket[] = [];
    const collector = createServer((s) => {
      sockets.push(s);
      s.on('data', (d) => received.push(d.toString()));
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
    const port = (collector.address() as { port: number }).port;
    try {
      await other.api.call('POST', 'secret/data/x', { body: { data: { v: secretValue } } });
      const res = await other.api.call('PUT', 'sys/audit/sock', {
        body: { type: 'socket', options: { address: `127.0.0.1:${port}` } },
      });
      assert.equal(res.status, 204, res.text);
      assert.equal((await other.api.call('GET', 'secret/data/x')).status, 200);
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(received.join('').includes('secret/data/x'));
      assert.equal(received.join('').includes(secretValue), false);
      for (const s of sockets) s.destroy();
      await new Promise((r) => collector.close(r));
      await new Promise((r) => setTimeout(r, 100));
      await refusedRead(other);
    } finally {
      await other.stop();
    }
  });

  it('a UDP socket device sends one datagram per line, also for the many lines of one write', async () => {
    const other = await startServer();
    const datagrams: string[] = [];
    const collector = createSocket('udp4');
    collector.on('message', (m) => datagrams.push(m.toString()));
    await new Promise<void>((r) => collector.bind(0, '127.0.0.1', r));
    try {
      await other.api.call('POST', 'secret/data/udp', { body: { data: { v: secretValue } } });
      const res = await other.api.call('PUT', 'sys/audit/udp', {
        body: { type: 'socket', options: { address: `127.0.0.1:${collector.address().port}`, socket_type: 'udp' } },
      });
      assert.equal(res.status, 204, res.text);
      // Many requests at once: their entries are written together, a turn of the event loop at a time.
      const answers = await Promise.all(Array.from({ length: 40 }, () => other.api.call('GET', 'secret/data/udp')));
      assert.deepEqual([...new Set(answers.map((a) => a.status))], [200]);
      for (let i = 0; i < 40 && datagrams.length < 81; i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(datagrams.length >= 81, `${datagrams.length} datagrams`); // and the device's test entry
      for (const d of datagrams) assert.match(d, /^\{[^\n]*\}\n$/, 'one line per datagram');
      const result = verifyLines(
        datagrams.map((d) => d.slice(0, -1)),
        {},
      );
      assert.ok(result.ok, `the chain breaks: ${JSON.stringify(result)}`);
      assert.equal(datagrams.join('').includes(secretValue), false);
    } finally {
      collector.close();
      await other.stop();
    }
  });

  it('an audit device that cannot open or write is refused at enable time', async () => {
    const res = await srv.api.call('PUT', 'sys/audit/bad', {
      body: { type: 'file', options: { file_path: '/nonexistent/dir/audit.log' } },
    });
    assert.equal(res.status, 400);
    assert.match(res.body.errors[0], /cannot enable/);
    const full = await srv.api.call('PUT', 'sys/audit/full2', {
      body: { type: 'file', options: { file_path: '/dev/full' } },
    });
    assert.equal(full.status, 400);
    assert.equal((await srv.api.call('GET', 'sys/audit')).body.data['full2/'], undefined);
    const unknown = await srv.api.call('PUT', 'sys/audit/bad', { body: { type: 'carrier-pigeon' } });
    assert.equal(unknown.status, 400);
  });
});

describe('audit: a device enabled while a request is on its way', () => {
  let srv: InProcessServer;
  before(async () => {
    srv = await startServer();
  });
  after(() => srv.stop());

  it(
    'records the request and its answer, although no device was enabled when it began',
    { timeout: 30_000 },
    async () => {
      await srv.api.call('POST', 'secret/data/late', { body: { data: { v: 'x' } }, token: srv.rootToken });
      // The next request's token lookup waits until a device has been enabled by another request.
      const tokens = srv.cofre.core.tokens;
      const lookup = tokens.lookup.bind(tokens);
      let release: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let held = false;
      let reached: () => void = () => undefined;
      const inLookup = new Promise<void>((resolve) => (reached = resolve));
      tokens.lookup = async (token) => {
        if (!held) {
          held = true;
          reached();
          await gate;
        }
        return lookup(token);
      };
      try {
        const pending = fetch(`${srv.url}/v1/secret/data/late`, { headers: { 'x-vault-token': srv.rootToken } });
        await inLookup;
        const logFile = join(srv.dir, 'late-audit.log');
        await enableFileAudit(srv.api, logFile);
        release();
        const res = await pending;
        assert.equal(res.status, 200);
        const entries = readFileSync(logFile, 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as { type: string; request: { path: string; operation: string } });
        const of = (type: string) =>
          entries.filter(
            (e) => e.type === type && e.request.path === 'secret/data/late' && e.request.operation === 'read',
          );
        assert.equal(of('request').length, 1, JSON.stringify(entries.map((e) => [e.type, e.request.path])));
        assert.equal(of('response').length, 1);
      } finally {
        release();
        tokens.lookup = lookup;
      }
    },
  );
});
