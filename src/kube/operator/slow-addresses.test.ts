import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { SlowAddresses } from './slow-addresses.js';

describe('SlowAddresses', () => {
  let hits = 0;
  let address = '';
  // Answers 200 and then a byte every 50 ms: a call only ends at its deadline.
  const server = http.createServer((_req, res) => {
    hits++;
    res.writeHead(200, { 'content-type': 'application/json' });
    const timer = setInterval(() => res.write(' '), 50);
    res.on('close', () => clearInterval(timer));
  });
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    address = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('does not call again for a while an address whose call ran into its deadline', async () => {
    const slow = new SlowAddresses(1000);
    const client = slow.client({ address, timeoutMs: 300 });
    await assert.rejects(client.request('GET', 'sys/health'), /timed out/);
    assert.equal(hits, 1);
    // Another client of the same address (another CA bundle, another CofreSecret) is paused too.
    const started = Date.now();
    await assert.rejects(
      slow.client({ address, timeoutMs: 300 }).request('GET', 'sys/health'),
      /did not answer in time lately: not called again before/,
    );
    assert.ok(Date.now() - started < 100, 'the paused call waited');
    assert.equal(hits, 1, 'the paused address was called');
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await assert.rejects(client.request('GET', 'sys/health'), /timed out/);
    assert.equal(hits, 2, 'the address was not tried again after the pause');
  });
});
