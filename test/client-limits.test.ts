// The client (CLI, operator, CSI provider, agents) talks to addresses that are not always trusted: the operator and
// the CSI provider follow a CofreConnection's or a SecretProviderClass's address, chosen by a tenant. A server there
// must not hold a call for good, fill the caller's memory, or have it read a device as a CA file.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { VaultClient } from '../src/client/client.js';
import { ChangeStream } from '../src/client/events.js';
import { selfSignedCert, tempDir } from './support.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** Answers 200 and then sends a byte every 50 ms, for ever: an idle timeout never fires. */
const trickle: Handler = (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  const timer = setInterval(() => res.write(' '), 50);
  res.on('close', () => clearInterval(timer));
};

/** Answers 200 and then sends 64 KiB chunks for as long as the client reads. */
const flood: Handler = (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const pump = (): void => {
    while (!res.destroyed && res.write(chunk));
    if (!res.destroyed) res.once('drain', pump);
  };
  pump();
};

describe('the client against a hostile server', () => {
  const dir = tempDir('client-limits');
  const tls = selfSignedCert(dir);
  const servers: (http.Server | https.Server)[] = [];
  const urls: { http: Record<string, string>; https: Record<string, string> } = { http: {}, https: {} };

  before(async () => {
    for (const [name, handler] of Object.entries({ trickle, flood })) {
      for (const scheme of ['http', 'https'] as const) {
        const server =
          scheme === 'http'
            ? http.createServer(handler)
            : https.createServer({ key: readFileSync(tls.key), cert: readFileSync(tls.cert) }, handler);
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        servers.push(server);
        urls[scheme][name] = `${scheme}://127.0.0.1:${(server.address() as { port: number }).port}`;
      }
    }
  });
  after(async () => {
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  for (const scheme of ['http', 'https'] as const) {
    const caCert = scheme === 'https' ? { caCert: tls.cert } : {};

    it(`${scheme}: an answer trickled byte by byte ends at the call's deadline`, async () => {
      // Before, over https with a CA file the deadline was an idle timeout, which a byte every 50 ms never reached.
      const client = new VaultClient({ address: urls[scheme].trickle!, ...caCert, timeoutMs: 800 });
      const started = Date.now();
      await assert.rejects(client.request('GET', 'sys/health'), /timed out/);
      const took = Date.now() - started;
      assert.ok(took >= 700 && took < 3000, `gave up after ${took} ms`);
    });

    it(`${scheme}: an answer larger than the limit is refused, not read into memory`, async () => {
      const client = new VaultClient({ address: urls[scheme].flood!, ...caCert, maxResponseBytes: 1024 * 1024 });
      const heapBefore = process.memoryUsage().arrayBuffers;
      await assert.rejects(client.request('GET', 'sys/health'), /the answer exceeded 1048576 bytes/);
      assert.ok(process.memoryUsage().arrayBuffers - heapBefore < 64 * 1024 * 1024);
    });
  }

  it('a CA "file" that is a device or a FIFO is refused at once, without reading or waiting', async () => {
    // Before, /dev/zero was read until memory ran out (synchronously, on the event loop), and a FIFO blocked it.
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    for (const caCert of ['/dev/zero', fifo]) {
      const client = new VaultClient({ address: urls.https.trickle!, caCert, timeoutMs: 5000 });
      const started = Date.now();
      await assert.rejects(client.request('GET', 'sys/health'), /is not a regular file/);
      assert.ok(Date.now() - started < 1000);
    }
  });

  it('a change stream whose frame never ends is dropped, not buffered', async () => {
    const served: { closed: boolean; sent: number }[] = [];
    const endless = http.createServer((_req, res) => {
      const state = { closed: false, sent: 0 };
      served.push(state);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: hello\ndata: {"index": 0}\n\n');
      const chunk = 'x'.repeat(64 * 1024);
      const pump = (): void => {
        while (!res.destroyed && state.sent < 256 * 1024 * 1024 && res.write(chunk)) state.sent += chunk.length;
        if (!res.destroyed) res.once('drain', pump);
      };
      res.on('close', () => (state.closed = true));
      pump();
    });
    await new Promise<void>((resolve) => endless.listen(0, '127.0.0.1', resolve));
    const errors: string[] = [];
    const stream = new ChangeStream({
      address: `http://127.0.0.1:${(endless.address() as { port: number }).port}`,
      token: async () => 'token',
      onChange: () => undefined,
      onReset: () => undefined,
      log: (_msg, fields) => errors.push(String((fields as { error?: string }).error)),
      minDelayMs: 60_000,
    });
    try {
      await stream.ready;
      const deadline = Date.now() + 10_000;
      while (errors.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.match(errors[0] ?? '', /sent a frame of more than 1048576 characters/);
      while (!served[0]!.closed && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(served[0]!.closed, true, 'the client kept the connection');
      assert.ok(served[0]!.sent < 32 * 1024 * 1024, `the client read ${served[0]!.sent} bytes of one frame`);
    } finally {
      stream.close();
      endless.closeAllConnections();
      await new Promise((resolve) => endless.close(resolve));
    }
  });
});
