// A body sent as application/octet-stream is left unread for the one handler that streams it (a snapshot restore),
// so no body limit applies to it. A request that never reaches that handler (no token, another path) must not keep
// its connection reading whatever the client goes on sending.
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { UNREAD_BODY_LINGER_MS } from '../src/http/server.js';
import { startServer, type InProcessServer } from './support.js';

/** Sends the head of a chunked octet-stream POST and then chunks until the server closes; resolves with the answer. */
async function streamForever(url: string, path: string): Promise<{ head: string; closed: boolean; openFor: number }> {
  const { hostname, port } = new URL(url);
  const socket: Socket = connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.on('error', () => undefined);
  let closed = false;
  socket.on('close', () => (closed = true));
  let answer = '';
  const answered = new Promise<void>((resolve) =>
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      if (answer.includes('\r\n\r\n')) resolve();
    }),
  );
  socket.write(
    `POST ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/octet-stream\r\n` +
      'Transfer-Encoding: chunked\r\n\r\n',
  );
  const chunk = Buffer.alloc(64 * 1024, 7);
  const frame = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]);
  let stop = false;
  const pump = (async () => {
    while (!stop && !closed && socket.writable) {
      if (!socket.write(frame)) await new Promise((resolve) => setTimeout(resolve, 5));
      else await new Promise((resolve) => setImmediate(resolve));
    }
  })();
  await answered;
  // The answer is there; go on sending, as a client that ignores it would.
  const answeredAt = Date.now();
  const until = answeredAt + UNREAD_BODY_LINGER_MS + 3000;
  while (!closed && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
  const openFor = Date.now() - answeredAt;
  stop = true;
  await pump;
  const result = { head: answer.split('\r\n\r\n')[0] ?? '', closed, openFor };
  socket.destroy();
  return result;
}

describe('an octet-stream body nobody reads', () => {
  let srv: InProcessServer;
  before(async () => {
    srv = await startServer();
  });
  after(() => srv.stop());

  it('is not read on for long: the connection is closed soon after the request is answered', async () => {
    // Before, the server answered 403 and went on reading (and discarding) the body for as long as it came.
    for (const path of ['/v1/sys/storage/snapshot', '/v1/secret/data/app']) {
      const res = await streamForever(srv.url, path);
      assert.match(res.head, /^HTTP\/1\.1 4\d\d /, `${path}: ${res.head}`);
      assert.equal(res.closed, true, `${path}: the server kept reading the body ${res.openFor} ms after its answer`);
      // A client finishing its upload is given a moment to read the answer first.
      assert.ok(res.openFor >= UNREAD_BODY_LINGER_MS - 500, `${path}: closed ${res.openFor} ms after the answer`);
    }
  });

  it('other requests keep their connection', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<unknown>();
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve, reject) => {
        const req = request(`${srv.url}/v1/secret/data/app`, {
          method: 'POST',
          agent,
          headers: { 'x-vault-token': srv.rootToken, 'content-type': 'application/json' },
        });
        req.on('socket', (s) => sockets.add(s));
        req.on('response', (res) => {
          assert.equal(res.statusCode, 200);
          assert.notEqual(res.headers.connection, 'close');
          res.resume().on('end', resolve);
        });
        req.on('error', reject);
        req.end(JSON.stringify({ data: { n: i } }));
      });
    }
    agent.destroy();
    assert.equal(sockets.size, 1, 'each request opened a connection of its own');
  });
});
