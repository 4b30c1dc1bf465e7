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
import { forwardCeremonyCall, openForwardedCall, sealCeremonyCall, sealForwardedReply } from './ceremony-forwarding.js';
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

  /** A leader of `barrier`'s cluster whose attempts `run` the calls. */
  async function leader(barrier: Barrier, run: (call: CeremonyCall) => Promise<unknown>): Promise<string> {
    const server = await serverAt(async (body) => {
      try {
        const { id, call } = openForwardedCall(barrier, JSON.parse(body).sealed);
        return {
          status: 200,
          body: JSON.stringify({ sealed: await sealForwardedReply(barrier, id, () => run(call)) }),
        };
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
    assert.ok(!Buffer.from(sealed, 'base64').includes(share), 'the share is not in the clear');
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

  it('refuses what a server posing as the leader answers: another cluster, an old answer, a flood, an address', async () => {
    // Another cluster's leader cannot open the call: it refuses, and the share stays sealed.
    const other = await leader(theirs, async () => ({ started: true }));
    await assert.rejects(
      forwardCeremonyCall(ours, other, { op: 'root.status' }),
      refusedWith(403, /the leader refused: the forwarded call was not sealed by a node of this cluster/),
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
