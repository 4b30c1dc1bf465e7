import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer, type InProcessServer } from '../../test/support.js';
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
