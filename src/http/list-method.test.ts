import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify from 'fastify';
import vault from 'node-vault';
import { installListMethodSupport, ListRewriter } from './list-method.js';

type Reply = { status: number; body: string };
type Echo = { method: string; url: string; body: string };

/** Splits raw response bytes into complete responses (framed by Content-Length; none means empty). */
function parseResponses(raw: string): Reply[] {
  const replies: Reply[] = [];
  for (let at = 0; ;) {
    const end = raw.indexOf('\r\n\r\n', at);
    if (end < 0) return replies;
    const head = raw.slice(at, end);
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    if (raw.length < end + 4 + length) return replies;
    replies.push({ status: Number(head.split(' ')[1]), body: raw.slice(end + 4, end + 4 + length) });
    at = end + 4 + length;
  }
}

/** Writes `parts` on a fresh connection (pausing `gap` ms between them), collects `count` replies or the close. */
async function exchange(port: number, parts: string[], count: number, gap = 0) {
  const socket = net.connect(port, '127.0.0.1').setNoDelay(true);
  let raw = '';
  let closed = false;
  const done = new Promise<void>((resolve) => {
    socket.on('data', (d: Buffer) => (raw += d.toString('latin1')) && parseResponses(raw).length >= count && resolve());
    socket.on('close', () => ((closed = true), resolve()));
  });
  await new Promise((resolve) => socket.once('connect', resolve));
  for (const part of parts) {
    socket.write(part);
    if (gap) await sleep(gap);
  }
  await done;
  socket.destroy();
  return { replies: parseResponses(raw), closed };
}

const echoes = (replies: Reply[]): Echo[] => replies.map((r) => JSON.parse(r.body) as Echo);
const get = (url: string) => ({ method: 'GET', url, body: '' });

describe('LIST method support', () => {
  let server: http.Server;
  let port: number;
  const urls: string[] = [];
  before(async () => {
    server = http.createServer({ connectionsCheckingInterval: 20, headersTimeout: 100, requestTimeout: 150 });
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      const body: Buffer[] = [];
      urls.push(req.url ?? '');
      req.on('data', (d: Buffer) => body.push(d));
      const reply = () => res.end(JSON.stringify({ method: req.method, url: req.url, body: Buffer.concat(body) + '' }));
      req.on('end', () => (req.url?.startsWith('/slow') ? setTimeout(reply, 1300) : reply()));
    });
    server.keepAliveTimeout = 50; // Node adds 1 s to it
    installListMethodSupport(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise((resolve) => server.close(resolve)));

  it('leaves other requests alone', async () => {
    const { replies } = await exchange(port, ['GET /v1/sys/health HTTP/1.1\r\nHost: h\r\n\r\n'], 1);
    assert.deepEqual(echoes(replies), [get('/v1/sys/health')]);
  });

  it('serves a lone LIST as GET with list=true', async () => {
    const { replies } = await exchange(port, ['LIST /v1/secret/metadata/ HTTP/1.1\r\nHost: h\r\n\r\n'], 1);
    assert.deepEqual(echoes(replies), [get('/v1/secret/metadata/?list=true')]);
  });

  const tricky = 'x\r\n\r\nLIST /x HTTP/1.1\r\nHost: h\r\n\r\n';
  const sequence = [
    'GET /a HTTP/1.1\r\nHost: h\r\n\r\n',
    'LIST /v1/secret/metadata/ HTTP/1.1\r\nHost: h\r\n\r\n',
    `POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: ${tricky.length}\r\n\r\n${tricky}`,
    'LIST /v1/kv?version=2 HTTP/1.1\r\nHost: h\r\n\r\n',
    'POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;e="1"\r\nLIST \r\n3\r\n/x \r\n0\r\nX-T: LIST\r\n\r\n',
    '\r\nLIST /last HTTP/1.1\r\nHost: h\r\n\r\n',
  ];
  const expected = [
    get('/a'),
    get('/v1/secret/metadata/?list=true'),
    { method: 'POST', url: '/p', body: tricky },
    get('/v1/kv?version=2&list=true'),
    { method: 'POST', url: '/c', body: 'LIST /x ' },
    get('/last?list=true'),
  ];

  it('frames a pipelined keep-alive sequence, rewriting only request lines', async () => {
    const { replies } = await exchange(port, [sequence.join('')], sequence.length);
    assert.deepEqual(echoes(replies), expected);
  });

  it('frames the same sequence sent request by request', async () => {
    const { replies } = await exchange(port, sequence, sequence.length, 20);
    assert.deepEqual(echoes(replies), expected);
  });

  it('works with the LIST request split at every byte offset', async () => {
    for (const lead of ['', 'GET /first HTTP/1.1\r\nHost: h\r\n\r\n']) {
      const text = `${lead}LIST /v1/m?a=1 HTTP/1.1\r\nHost: h\r\n\r\n`;
      const want = [...(lead ? [get('/first')] : []), get('/v1/m?a=1&list=true')];
      for (let cut = 1; cut < text.length; cut++) {
        const { replies } = await exchange(port, [text.slice(0, cut), text.slice(cut)], want.length, 3);
        assert.deepEqual(echoes(replies), want, `cut at ${cut}`);
      }
      const { replies } = await exchange(port, [...text], want.length, 1); // byte by byte
      assert.deepEqual(echoes(replies), want);
    }
  });

  it('still answers 400 and closes on other unknown methods', async () => {
    const junk = await exchange(port, ['FOO / HTTP/1.1\r\nHost: h\r\n\r\n'], 99);
    assert.deepEqual([junk.replies.map((r) => r.status), junk.closed], [[400], true]);
    // (in separate writes: like Node, a parse error pipelined behind a pending response replaces that response)
    const later = await exchange(port, ['LIST /a HTTP/1.1\r\nHost: h\r\n\r\n', 'FOO / HTTP/1.1\r\n\r\n'], 99, 50);
    assert.deepEqual([later.replies.map((r) => r.status), later.closed], [[200, 400], true]);
  });

  it('stops rewriting after an ambiguous request; llhttp rejects it', async () => {
    urls.length = 0;
    const smuggle = 'POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n';
    const parts = ['LIST /a HTTP/1.1\r\nHost: h\r\n\r\n', `${smuggle}LIST /b HTTP/1.1\r\nHost: h\r\n\r\n`];
    const { replies, closed } = await exchange(port, parts, 99, 50);
    assert.deepEqual([replies.map((r) => r.status), closed, urls], [[200, 400], true, ['/a?list=true']]);
  });

  it('keeps a taken-over connection past the server headersTimeout', async () => {
    const req = 'LIST /t HTTP/1.1\r\nHost: h\r\n\r\n';
    const { replies } = await exchange(port, [req, req], 2, 400);
    assert.deepEqual(echoes(replies), [get('/t?list=true'), get('/t?list=true')]);
  });

  it("is not cut by the keep-alive timer Node armed after a pipelined request's response", async () => {
    const parts = ['GET /a HTTP/1.1\r\nHost: h\r\n\r\nLIST /slow HTTP/1.1\r\nHost: h\r\n\r\n'];
    const { replies } = await exchange(port, parts, 2);
    assert.deepEqual(echoes(replies), [get('/a'), get('/slow?list=true')]);
  });
});

describe('ListRewriter', () => {
  const rewrite = (parts: string[]) => {
    const rewriter = new ListRewriter();
    return Buffer.concat(parts.flatMap((p) => rewriter.push(Buffer.from(p, 'latin1')))).toString('latin1');
  };

  it('gives the same output for any split of the input', () => {
    const input = 'LIST /a HTTP/1.1\r\nContent-Length: 4\r\n\r\nLIST' + 'LIST /b?c HTTP/1.1\r\n\r\n';
    const output = 'GET /a?list=true HTTP/1.1\r\nContent-Length: 4\r\n\r\nLIST' + 'GET /b?c&list=true HTTP/1.1\r\n\r\n';
    for (let i = 0; i <= input.length; i++) {
      for (let j = i; j <= input.length; j += 7) {
        assert.equal(rewrite([input.slice(0, i), input.slice(i, j), input.slice(j)]), output, `${i}/${j}`);
      }
    }
  });

  it('passes everything through after ambiguous framing or a tunnel', () => {
    const next = 'LIST /b HTTP/1.1\r\n\r\n';
    for (const head of [
      'Content-Length: 1\r\nContent-Length: 1',
      'Content-Length: -1',
      'Content-Length: 0\r\nTransfer-Encoding: chunked',
      'Transfer-Encoding: gzip',
      'X: a\r\n folded',
      'Connection: upgrade\r\nUpgrade: websocket',
      `X: ${'a'.repeat(70_000)}`,
    ]) {
      const request = `POST /a HTTP/1.1\r\n${head}\r\n\r\n`;
      assert.equal(rewrite([request + next]), request + next, head.slice(0, 50));
    }
    assert.equal(rewrite(['LIST /a\r\n\r\n' + next]), 'GET /a\r\n\r\n' + next);
    assert.equal(rewrite(['GET / HTTP/1.1\nHost: h\n\n' + next]), 'GET / HTTP/1.1\nHost: h\n\n' + next);
  });
});

describe('LIST through Fastify and node-vault', () => {
  const app = Fastify();
  const queries: unknown[] = [];
  let endpoint = '';
  before(async () => {
    app.get('/v1/*', async (request) => {
      queries.push({ ...(request.query as object) });
      return { data: { keys: ['a'] } };
    });
    installListMethodSupport(app.server);
    endpoint = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  after(() => app.close());

  it('shows request.query.list === "true" in a Fastify route', async () => {
    const { port } = app.server.address() as AddressInfo;
    const { replies } = await exchange(port, ['LIST /v1/secret/metadata/?x=1 HTTP/1.1\r\nHost: h\r\n\r\n'], 1);
    assert.deepEqual(replies, [{ status: 200, body: '{"data":{"keys":["a"]}}' }]);
    assert.deepEqual(queries.at(-1), { x: '1', list: 'true' });
    const junk = await exchange(port, ['FOO / HTTP/1.1\r\nHost: h\r\n\r\n'], 99);
    assert.deepEqual([junk.replies.map((r) => r.status), junk.closed], [[400], true], "Fastify's handler still runs");
  });

  it('serves node-vault list()', async () => {
    const client = vault({ endpoint, token: 't' });
    const result = (await client.list('secret/metadata/')) as { data: { keys: string[] } };
    assert.deepEqual(result.data.keys, ['a']);
    assert.deepEqual(queries.at(-1), { list: 'true' });
  });
});
