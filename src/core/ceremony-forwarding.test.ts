import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, mock } from 'node:test';
import { openSqliteStorage } from '../storage/sqlite.js';
import { Barrier } from './barrier.js';
import {
  forwardCeremonyCall,
  ForwardedCalls,
  openForwardedCall,
  sealCeremonyCall,
  sealForwardedReply,
} from './ceremony-forwarding.js';
import { CofreError } from './errors.js';
import type { CeremonyCall } from './key-ceremonies.js';
import type { Storage } from './storage.js';

const dir = mkdtempSync(join(tmpdir(), 'cofre-ceremony-forwarding-'));

const stores: Storage[] = [];

/** An unsealed barrier on a store of its own: one cluster. */
async function cluster(name: string): Promise<Barrier> {
  const store = openSqliteStorage(join(dir, `${name}.db`));
  stores.push(store);
  const barrier = new Barrier(store);
  await barrier.initialize(randomBytes(32));
  return barrier;
}

/** A server on a loopback port answering every request body with `answer`: a leader, or one posing as it. */
async function serverAt(answer: (body: string) => Promise<{ status: number; body: string }>): Promise<Server> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      void answer(body).then(({ status, body: out }) =>
        res.writeHead(status, { 'content-type': 'application/json' }).end(out),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

const urlOf = (server: Server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

const refusedWith = (status: number, pattern: RegExp) => (err: unknown) =>
  err instanceof CofreError && err.status === status && pattern.test(err.message);

describe('key ceremony calls forwarded to the leader', () => {
  let ours: Barrier;
  let theirs: Barrier;
  const servers: Server[] = [];

  /** A leader of `barrier`'s cluster whose attempts `run` the calls, as Core.runForwardedCeremony runs them. */
  async function leader(barrier: Barrier, run: (call: CeremonyCall) => Promise<unknown>): Promise<string> {
    const calls = new ForwardedCalls(barrier);
    const server = await serverAt(async (body) => {
      try {
        return { status: 200, body: JSON.stringify({ sealed: await calls.answer(JSON.parse(body).sealed, run) }) };
      } catch (err) {
        // As Cofre's HTTP layer answers a CofreError.
        if (!(err instanceof CofreError)) throw err;
        return { status: err.status, body: JSON.stringify({ errors: [err.message] }) };
      }
    });
    servers.push(server);
    return urlOf(server);
  }

  before(async () => {
    ours = await cluster('ours');
    theirs = await cluster('theirs');
  });
  after(async () => {
    for (const server of servers) server.close();
    await Promise.all(stores.map((store) => store.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('a share crosses sealed, and opens on a node of the same cluster only', () => {
    const share = randomBytes(33);
    const { id, sealed } = sealCeremonyCall(ours, { op: 'root.update', key: share, nonce: 'n-1' });
    const bytes = Buffer.from(sealed, 'base64');
    for (const form of [share, Buffer.from(share.toString('base64')), Buffer.from(share.toString('hex'))]) {
      assert.ok(!bytes.includes(form) && !sealed.includes(form.toString('latin1')), 'the share is not in the clear');
    }
    const opened = openForwardedCall(ours, sealed);
    assert.equal(opened.id, id);
    assert.deepEqual(opened.call, { op: 'root.update', key: share, nonce: 'n-1' });
    assert.throws(() => openForwardedCall(theirs, sealed), refusedWith(403, /not sealed by a node of this cluster/));
  });

  it('refuses an answer offered as a call, and a call sealed more than a minute ago', async () => {
    const reply = await sealForwardedReply(ours, 'some-id', async () => ({ started: false }));
    assert.throws(() => openForwardedCall(ours, reply), refusedWith(403, /not sealed by a node of this cluster/));
    const { sealed } = sealCeremonyCall(ours, { op: 'root.cancel' });
    mock.timers.enable({ apis: ['Date'], now: Date.now() + 61_000 });
    try {
      assert.throws(() => openForwardedCall(ours, sealed), refusedWith(403, /expired/));
    } finally {
      mock.timers.reset();
    }
  });

  it("carries the leader's answer, and its error with its status", async () => {
    const url = await leader(ours, async (call) => {
      if (call.op === 'root.cancel') throw new CofreError(400, 'no root generation in progress');
      return { started: true, nonce: 'n-2' };
    });
    assert.deepEqual(await forwardCeremonyCall(ours, url, { op: 'root.status' }), { started: true, nonce: 'n-2' });
    await assert.rejects(
      forwardCeremonyCall(ours, url, { op: 'root.cancel' }),
      refusedWith(400, /^no root generation in progress$/),
    );
  });

  it('runs a call once: a copy sent again, at once or later, gets the first answer and counts nothing', async () => {
    const calls = new ForwardedCalls(ours);
    let runs = 0;
    const run = async () => ({ progress: ++runs });
    const { sealed } = sealCeremonyCall(ours, { op: 'root.update', key: randomBytes(33), nonce: 'n-3' });
    const [first, racing] = await Promise.all([calls.answer(sealed, run), calls.answer(sealed, run)]);
    const later = await calls.answer(sealed, run);
    assert.equal(runs, 1);
    assert.equal(racing, first);
    assert.equal(later, first);
    // Another call runs.
    await calls.answer(sealCeremonyCall(ours, { op: 'root.status' }).sealed, run);
    assert.equal(runs, 2);
  });

  it('remembers a bounded number of calls: past it, new calls are refused until the old ones expire', async () => {
    const calls = new ForwardedCalls(ours, 2);
    const run = async () => ({});
    await calls.answer(sealCeremonyCall(ours, { op: 'root.status' }).sealed, run);
    await calls.answer(sealCeremonyCall(ours, { op: 'root.status' }).sealed, run);
    assert.throws(
      () => calls.answer(sealCeremonyCall(ours, { op: 'root.status' }).sealed, run),
      refusedWith(503, /too many forwarded key ceremony calls/),
    );
    mock.timers.enable({ apis: ['Date'], now: Date.now() + 121_000 });
    try {
      await calls.answer(sealCeremonyCall(ours, { op: 'root.status' }).sealed, run);
    } finally {
      mock.timers.reset();
    }
  });

  it('sends a call whose answer was lost again; the leader runs it once', async () => {
    const calls = new ForwardedCalls(ours);
    let runs = 0;
    let dropped = false;
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        void calls
          .answer(JSON.parse(body).sealed, async () => ({ progress: ++runs }))
          .then((sealed) => {
            // The first answer is lost on the way back, after the leader ran the call.
            if (!dropped) {
              dropped = true;
              res.socket?.destroy();
              return;
            }
            res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sealed }));
          });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    assert.deepEqual(await forwardCeremonyCall(ours, urlOf(server), { op: 'root.status' }), { progress: 1 });
    assert.equal(runs, 1);
  });

  it('refuses what a server posing as the leader answers: another cluster, an old answer, a flood, an address', async () => {
    // Another cluster's leader cannot open the call: it refuses, and the share stays sealed.
    const other = await leader(theirs, async () => ({ started: true }));
    await assert.rejects(
      forwardCeremonyCall(ours, other, { op: 'root.status' }),
      refusedWith(502, /refused the forwarded call with status 403, in an answer not sealed by this cluster/),
    );
    // Its words are not passed on: anyone could have written them.
    const lying = await serverAt(async () => ({
      status: 400,
      body: JSON.stringify({ errors: ['send your unseal keys to attacker.example'] }),
    }));
    servers.push(lying);
    await assert.rejects(forwardCeremonyCall(ours, urlOf(lying), { op: 'root.status' }), (err: unknown) => {
      assert.ok(err instanceof CofreError && err.status === 502);
      assert.doesNotMatch(err.message, /attacker/);
      return true;
    });
    // The call itself echoed back as an answer: another context, refused.
    const echoing = await serverAt(async (body) => ({ status: 200, body }));
    servers.push(echoing);
    await assert.rejects(
      forwardCeremonyCall(ours, urlOf(echoing), { op: 'root.status' }),
      refusedWith(502, /did not answer as this cluster's leader/),
    );
    // A redirect elsewhere is not followed.
    const redirecting = await serverAt(async () => ({ status: 500, body: '' }));
    redirecting.removeAllListeners('request');
    redirecting.on('request', (_req, res) => res.writeHead(307, { location: `${urlOf(echoing)}/v1/sys/health` }).end());
    servers.push(redirecting);
    await assert.rejects(
      forwardCeremonyCall(ours, urlOf(redirecting), { op: 'root.status' }),
      refusedWith(502, /could not be reached .* may or may not have been made/),
    );
    // A genuine answer, but to another call (replayed): refused.
    const old = await sealForwardedReply(ours, 'an-earlier-call', async () => ({ started: true, nonce: 'forged' }));
    const replaying = await serverAt(async () => ({ status: 200, body: JSON.stringify({ sealed: old }) }));
    servers.push(replaying);
    await assert.rejects(
      forwardCeremonyCall(ours, urlOf(replaying), { op: 'root.status' }),
      refusedWith(502, /did not answer as this cluster's leader/),
    );
    const flooding = await serverAt(async () => ({
      status: 200,
      body: JSON.stringify({ sealed: 'A'.repeat(1 << 20) }),
    }));
    servers.push(flooding);
    await assert.rejects(
      forwardCeremonyCall(ours, urlOf(flooding), { op: 'root.status' }),
      refusedWith(502, /sent more than 65536 bytes/),
    );
    await assert.rejects(
      forwardCeremonyCall(ours, 'file:///etc/passwd', { op: 'root.status' }),
      refusedWith(502, /no usable API address/),
    );
  });
});
