/**
 * sys/cofre/audit-log/<device>: a file audit device's last entries read back over the API (the web UI's audit
 * page). It must need sudo, keep every value HMAC'd exactly as on disk, refuse devices it cannot read (a socket)
 * with a message that says so, bound what it reads, and never return a line still being written.
 */
import assert from 'node:assert/strict';
import { appendFileSync, rmSync, writeFileSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { lastLines } from '../src/audit/file-tail.js';
import { enableFileAudit, startServer, tempDir, writeOk, type InProcessServer } from './support.js';

const VALUE = 'audit-readback-VALUE-31c9';

describe('reading a file audit device back (sys/cofre/audit-log)', () => {
  let srv: InProcessServer;
  let logFile = '';
  before(async () => {
    srv = await startServer();
    logFile = join(srv.dir, 'audit.log');
    await enableFileAudit(srv.api, logFile);
  });
  after(() => srv.stop());

  it("returns the last entries newest first, values HMAC'd as in the file, no token or value in clear", async () => {
    await writeOk(srv.api, 'secret/data/readback', { data: { password: VALUE } });
    const read = await srv.api.call('GET', 'secret/data/readback');
    assert.equal(read.body.data.data.password, VALUE);
    const res = await srv.api.call('GET', 'sys/cofre/audit-log/file?limit=5');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.data.type, 'file');
    assert.equal(res.body.data.truncated, false);
    const entries = res.body.data.entries;
    assert.equal(entries.length, 5);
    // Newest first: this very request's own request entry leads, then the read's response.
    assert.equal(entries[0].type, 'request');
    assert.equal(entries[0].request.path, 'sys/cofre/audit-log/file');
    assert.equal(entries[1].type, 'response');
    assert.equal(entries[1].request.path, 'secret/data/readback');
    assert.equal(entries[1].response.status, 200);
    const hash = await srv.api.call('POST', 'sys/audit-hash/file', { body: { input: VALUE } });
    assert.equal(entries[1].response.data.data.password, hash.body.data.hash);
    assert.equal(res.text.includes(VALUE), false, 'a value came back in clear');
    assert.equal(res.text.includes(srv.rootToken), false, 'the token came back in clear');
    // The same lines as the file's last ones (the file has this read's response after them by now).
    const fileEntries: { type: string; request: { path: string } }[] = (await readLines(logFile)).map((l) =>
      JSON.parse(l),
    );
    const response = fileEntries
      .reverse()
      .find((e) => e.type === 'response' && e.request.path === 'secret/data/readback');
    assert.deepEqual(entries[1], response);
  });

  it('reads no more than asked, and everything there is when asked for more', async () => {
    const total = (await readLines(logFile)).length;
    const res = await srv.api.call('GET', 'sys/cofre/audit-log/file?limit=500');
    assert.equal(res.status, 200, res.text);
    // The file's lines plus this request's own request entry, written before the read.
    assert.equal(res.body.data.entries.length, total + 1);
    assert.equal(res.body.data.truncated, false);
    const one = await srv.api.call('GET', 'sys/cofre/audit-log/file?limit=1');
    assert.equal(one.body.data.entries.length, 1);
  });

  it('records a read by the number of lines it answered, not the lines again, so reading does not grow the log', async () => {
    // Enough lines that writing them again would take more room than the lines themselves.
    for (let i = 0; i < 40; i++) await writeOk(srv.api, `secret/data/filler/${i}`, { data: { n: String(i) } });
    const before = (await readLines(logFile)).length;
    const read = await srv.api.call('GET', 'sys/cofre/audit-log/file?limit=80');
    assert.equal(read.status, 200, read.text);
    assert.equal(read.body.data.entries.length, 80);
    const lines = await readLines(logFile);
    assert.equal(lines.length, before + 2, 'a read is one request and one response line');
    const response = JSON.parse(lines.at(-1)!);
    assert.equal(response.type, 'response');
    assert.equal(response.request.path, 'sys/cofre/audit-log/file');
    assert.deepEqual(Object.keys(response.response.data).sort(), ['entries_returned', 'truncated']);
    const count = await srv.api.call('POST', 'sys/audit-hash/file', { body: { input: '80' } });
    assert.equal(response.response.data.entries_returned, count.body.data.hash);
    assert.ok(lines.at(-1)!.length < 4096, `the response line is ${lines.at(-1)!.length} bytes`);
    // Other paths' answers are still on record whole (their values HMAC'd).
    const kvLine = [...lines].reverse().find((l) => l.includes('"secret/data/filler/39"') && l.includes('"response"'));
    const kv = JSON.parse(kvLine!);
    assert.ok(kv.response.data.version, 'a KV write answer lost its data');
  });

  it('refuses a bad limit, an unknown field and an unknown device with a message', async () => {
    for (const limit of ['0', '501', '-3', 'many']) {
      const res = await srv.api.call('GET', `sys/cofre/audit-log/file?limit=${limit}`);
      assert.equal(res.status, 400, `limit=${limit}: ${res.text}`);
      assert.match(res.body.errors.join(' '), /limit/);
    }
    const unknownField = await srv.api.call('GET', 'sys/cofre/audit-log/file?lines=3');
    assert.equal(unknownField.status, 400, unknownField.text);
    const unknown = await srv.api.call('GET', 'sys/cofre/audit-log/nowhere');
    assert.equal(unknown.status, 400);
    assert.match(unknown.body.errors[0], /unknown audit device "nowhere\/"/);
  });

  it('needs sudo: read alone is refused, and a token without either learns nothing', async () => {
    await writeOk(srv.api, 'sys/policies/acl/audit-reader', {
      policy: 'path "sys/cofre/audit-log/*" { capabilities = ["read"] }',
    });
    await writeOk(srv.api, 'sys/policies/acl/audit-admin', {
      policy: 'path "sys/cofre/audit-log/*" { capabilities = ["read", "sudo"] }',
    });
    const tokenWith = async (policy: string) =>
      (await srv.api.call('POST', 'auth/token/create', { body: { policies: [policy] } })).body.auth.client_token;
    for (const policy of ['default', 'audit-reader']) {
      const res = await srv.api.call('GET', 'sys/cofre/audit-log/file', { token: await tokenWith(policy) });
      assert.equal(res.status, 403, `${policy}: ${res.text}`);
      assert.equal(res.text.includes('hmac-sha256'), false);
    }
    const admin = await srv.api.call('GET', 'sys/cofre/audit-log/file?limit=2', {
      token: await tokenWith('audit-admin'),
    });
    assert.equal(admin.status, 200, admin.text);
    assert.equal(admin.body.data.entries.length, 2);
  });

  it('says plainly that a socket device cannot be read back', async () => {
    const sockets: Socket[] = [];
    const collector = createServer((s) => {
      sockets.push(s);
      s.resume();
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    const port = (collector.address() as { port: number }).port;
    try {
      await writeOk(srv.api, 'sys/audit/collector', { type: 'socket', options: { address: `127.0.0.1:${port}` } });
      const res = await srv.api.call('GET', 'sys/cofre/audit-log/collector');
      assert.equal(res.status, 400, res.text);
      assert.match(res.body.errors[0], /"collector\/" is a socket device: .*cannot be read back here/);
      const gone = await srv.api.call('DELETE', 'sys/audit/collector');
      assert.equal(gone.status, 204, gone.text);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => collector.close(resolve));
    }
  });
});

describe('lastLines (the tail of an append-only file)', () => {
  const dir = tempDir('tail');
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('leaves out a last line still being written, and one cut by the window', async () => {
    const file = join(dir, 'tail.log');
    writeFileSync(file, ['one', 'two', 'three', 'four'].map((l) => `${l}\n`).join(''));
    appendFileSync(file, '{"half a line'); // a write in progress: no newline yet
    const handle = await open(file, 'r');
    try {
      const size = (await handle.stat()).size;
      assert.deepEqual(await lastLines(handle, size, 10), { lines: ['four', 'three', 'two', 'one'], truncated: false });
      assert.deepEqual(await lastLines(handle, size, 2), { lines: ['four', 'three'], truncated: false });
      // A window of 26 bytes (of 32) starts inside "two": that line is partial, so left out, and "one" is not read.
      assert.deepEqual(await lastLines(handle, size, 10, 26), { lines: ['four', 'three'], truncated: true });
    } finally {
      await handle.close();
    }
  });

  it('finds many lines across chunk boundaries', async () => {
    const file = join(dir, 'long.log');
    const lines = Array.from({ length: 5000 }, (_, i) => `line ${i} ${'x'.repeat(i % 97)}`);
    writeFileSync(file, lines.map((l) => `${l}\n`).join(''));
    const handle = await open(file, 'r');
    try {
      const size = (await handle.stat()).size;
      const tail = await lastLines(handle, size, 300);
      assert.deepEqual(tail.lines, lines.slice(-300).reverse());
      const all = await lastLines(handle, size, 5000, size);
      assert.equal(all.lines.length, 5000);
      assert.equal(all.truncated, false);
    } finally {
      await handle.close();
    }
  });
});

async function readLines(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8')).trim().split('\n');
}
