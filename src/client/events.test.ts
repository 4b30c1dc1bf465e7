import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { poll } from '../../test/poll.js';
import { startServer, type InProcessServer } from '../../test/support.js';
import { startRelay } from '../../test/tcp-relay.js';
import { VaultClient } from './client.js';
import { ChangeStream, type ChangeEvent } from './events.js';

/** The change stream against a real Cofre server: what it delivers is what the server did. */
describe('ChangeStream', () => {
  let srv: InProcessServer;
  before(async () => {
    srv = await startServer();
  });
  after(() => srv?.stop());

  it('says hello, then delivers a write as a change event (path, kind, version; never a value)', async () => {
    const events: ChangeEvent[] = [];
    let arrived: () => void = () => {};
    const got = new Promise<void>((r) => (arrived = r));
    const stream = new ChangeStream({
      address: srv.url,
      token: async () => srv.rootToken,
      onChange: (ev) => {
        events.push(ev);
        arrived();
      },
      onReset: () => assert.fail('no reset expected'),
    });
    try {
      await stream.ready;
      await new VaultClient({ address: srv.url, token: srv.rootToken }).write('secret/data/watched', {
        data: { password: 'not-in-the-event' },
      });
      await got;
      assert.equal(events[0]?.path, 'secret/watched');
      assert.equal(events[0]?.kind, 'write');
      assert.equal(events[0]?.version, 1);
      assert.ok(!JSON.stringify(events).includes('not-in-the-event'));
    } finally {
      stream.close();
    }
  });

  it('asks for a fresh token when the server refuses the one it has', async () => {
    const asked: boolean[] = [];
    const stream = new ChangeStream({
      address: srv.url,
      token: async (fresh) => {
        asked.push(fresh);
        return asked.length === 1 ? 'not-a-token' : srv.rootToken;
      },
      onChange: () => {},
      onReset: () => {},
      minDelayMs: 10,
    });
    try {
      await stream.ready;
      assert.deepEqual(asked, [false, true]);
    } finally {
      stream.close();
    }
  });
});

/** A connection that dies without a word (the relay between client and server goes silent) is noticed and replaced. */
describe('ChangeStream on a connection that falls silent', () => {
  const HEARTBEAT_MS = 200;
  const SILENCE_MS = 1_000;
  let srv: InProcessServer;
  before(async () => {
    srv = await startServer({ streamHeartbeatMs: HEARTBEAT_MS });
  });
  after(() => srv?.stop());

  it('keeps a quiet stream, gives up a silent one after the deadline, and resumes on a new connection', async () => {
    const relay = await startRelay(Number(new URL(srv.url).port));
    const events: ChangeEvent[] = [];
    const lost: { at: number; error: string }[] = [];
    const stream = new ChangeStream({
      address: relay.url,
      token: async () => srv.rootToken,
      onChange: (ev) => events.push(ev),
      onReset: () => assert.fail('no reset expected'),
      log: (msg, fields) => {
        if (msg === 'change stream disconnected')
          lost.push({ at: Date.now(), error: String((fields as { error?: unknown } | undefined)?.error) });
      },
      minDelayMs: 100,
      maxDelayMs: 400,
      silenceMs: SILENCE_MS,
    });
    const client = new VaultClient({ address: srv.url, token: srv.rootToken });
    try {
      await stream.ready;
      await new Promise((r) => setTimeout(r, 3 * SILENCE_MS));
      assert.deepEqual(lost, [], 'heartbeats keep a quiet stream');

      relay.silent = true;
      const silencedAt = Date.now();
      // Written while the connection is dead: it must arrive once a new connection resumes.
      await client.write('secret/data/while-silent', { data: { a: '1' } });
      const first = await poll<{ at: number; error: string }>(
        'the silent stream given up',
        async () => lost[0],
        5_000,
        20,
      );
      const after = first.at - silencedAt;
      assert.ok(after >= SILENCE_MS - HEARTBEAT_MS - 50 && after < SILENCE_MS + 1_500, `given up after ${after} ms`);
      assert.match(first.error, /nothing received for 1 s: the connection is taken as dead/);
      assert.deepEqual(events, []);

      relay.silent = false;
      const event = await poll<ChangeEvent>('the change on a new connection', async () => events[0], 5_000, 20);
      assert.equal(event.path, 'secret/while-silent');
    } finally {
      stream.close();
      await relay.close();
    }
  });
});
