import assert from 'node:assert/strict';
import { applyRemoteChanges } from '../src/core/remote-changes.js';
import { after, before, describe, it } from 'node:test';
import { startServer, tempDir, type InProcessServer } from './support.js';

interface Frame {
  id?: string;
  event: string;
  data: Record<string, unknown>;
}

/** A minimal server-sent-events reader over fetch: collects frames until closed. */
function subscribe(url: string, token: string, opts: { index?: number; lastEventId?: string } = {}) {
  const frames: Frame[] = [];
  const controller = new AbortController();
  const headers: Record<string, string> = { 'x-vault-token': token };
  if (opts.lastEventId) headers['last-event-id'] = opts.lastEventId;
  const query = opts.index !== undefined ? `?index=${opts.index}` : '';
  let ended = false;
  const done = (async () => {
    const res = await fetch(`${url}/v1/sys/cofre/events${query}`, { headers, signal: controller.signal });
    assert.equal(res.status, 200, await (res.status === 200 ? Promise.resolve('') : res.text()));
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const reader = res.body!.getReader();
    let buffer = '';
    for (;;) {
      const { value, done: finished } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (finished) break;
      buffer += Buffer.from(value!).toString();
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const frame: Partial<Frame> = {};
        for (const line of block.split('\n')) {
          if (line.startsWith('id: ')) frame.id = line.slice(4);
          if (line.startsWith('event: ')) frame.event = line.slice(7);
          if (line.startsWith('data: ')) frame.data = JSON.parse(line.slice(6));
        }
        if (frame.event) frames.push(frame as Frame);
      }
    }
    ended = true;
  })().catch(() => (ended = true));
  return {
    frames,
    changes: () => frames.filter((f) => f.event === 'change'),
    ended: () => ended,
    close: async () => {
      controller.abort();
      await done;
    },
  };
}

async function until(check: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('change stream (sys/cofre/events)', () => {
  let srv: InProcessServer;
  let teamToken = '';
  const dir = tempDir('events');
  before(async () => {
    srv = await startServer({ dir });
    await srv.api.call('PUT', 'sys/policies/acl/team-a', {
      body: { policy: 'path "secret/data/a/*" {\n  capabilities = ["read"]\n}\n' },
    });
    teamToken = (await srv.api.call('POST', 'auth/token/create', { body: { policies: ['team-a'] } })).body.auth
      .client_token;
  });
  after(() => srv.stop());

  /** Waits until `s` ends, and checks that it said hello and then only that its token is gone. */
  const endsRefused = async (s: ReturnType<typeof subscribe>, what: string, ms: number): Promise<void> => {
    await until(() => s.ended(), what, ms);
    assert.deepEqual(
      s.frames.map((f) => f.event),
      ['hello', 'error'],
    );
  };

  /** A new token of team-a (unless `body` says otherwise), made with `parent` (root by default). */
  const tokenOf = async (body: Record<string, unknown>, parent = srv.rootToken): Promise<string> => {
    const res = await srv.api.call('POST', 'auth/token/create', {
      token: parent,
      body: { policies: ['team-a'], ...body },
    });
    assert.equal(res.status, 200, res.text);
    return res.body.auth.client_token as string;
  };

  it('reports writes and deletes with path, kind, version and index, never the value, filtered by policy', async () => {
    const root = subscribe(srv.url, srv.rootToken);
    const team = subscribe(srv.url, teamToken);
    await until(() => root.frames.length > 0 && team.frames.length > 0, 'hello frames');
    await srv.api.call('POST', 'secret/data/a/x', { body: { data: { password: 'VALUE-A-1' } } });
    await srv.api.call('POST', 'secret/data/b/y', { body: { data: { password: 'VALUE-B-1' } } });
    await srv.api.call('POST', 'secret/data/a/x', { body: { data: { password: 'VALUE-A-2' } } });
    await srv.api.call('DELETE', 'secret/metadata/a/x');
    await until(() => root.changes().length === 4, 'four root events');
    await until(() => team.changes().length === 3, 'three team events');
    const events = root.changes().map((f) => f.data);
    assert.deepEqual(
      events.map((e) => [e.path, e.kind, e.version ?? null]),
      [
        ['secret/a/x', 'write', 1],
        ['secret/b/y', 'write', 1],
        ['secret/a/x', 'write', 2],
        ['secret/a/x', 'delete', null],
      ],
    );
    const indexes = events.map((e) => e.index as number);
    assert.deepEqual(
      indexes,
      [...indexes].sort((a, b) => a - b),
      'indexes increase',
    );
    assert.deepEqual(
      team.changes().map((f) => f.data.path),
      ['secret/a/x', 'secret/a/x', 'secret/a/x'],
    );
    const raw = JSON.stringify(root.frames);
    assert.equal(raw.includes('VALUE-'), false, 'no value on the stream');
    await root.close();
    await team.close();
  });

  // The entry rides on the handler's write (issue 13): once per change, with the version the handler wrote; a change
  // that wrote nothing gets its entry after the handler, and a refused one none.
  it('reports each change once: a patch with its version, a delete of nothing, a refused write not at all', async () => {
    const root = subscribe(srv.url, srv.rootToken);
    await until(() => root.frames.length > 0, 'the hello frame');
    const ok = (res: { status: number; text: string }) => assert.ok(res.status < 300, res.text);
    ok(await srv.api.call('POST', 'secret/data/once/p', { body: { data: { a: '1' } } }));
    ok(
      await srv.api.call('PATCH', 'secret/data/once/p', {
        body: { data: { b: '2' } },
        headers: { 'content-type': 'application/merge-patch+json' },
      }),
    );
    ok(await srv.api.call('DELETE', 'secret/data/once/missing'));
    const refused = await srv.api.call('POST', 'secret/data/once/p', {
      body: { data: { c: '3' }, options: { cas: 1 } },
    });
    assert.equal(refused.status, 400, refused.text);
    ok(await srv.api.call('POST', 'secret/data/once/end', { body: { data: { a: '1' } } }));
    await until(() => root.changes().some((f) => f.data.path === 'secret/once/end'), 'the last write');
    assert.deepEqual(
      root.changes().map((f) => [f.data.path, f.data.kind, f.data.version ?? null]),
      [
        ['secret/once/p', 'write', 1],
        ['secret/once/p', 'write', 2],
        ['secret/once/missing', 'delete', null],
        ['secret/once/end', 'write', 1],
      ],
    );
    await root.close();
  });

  it('resumes from an index (query or Last-Event-ID), also after a server restart', async () => {
    const first = subscribe(srv.url, srv.rootToken, { index: 0 });
    await until(() => first.changes().length >= 4, 'replay from 0');
    const secondId = first.changes()[1]!.id!;
    await first.close();
    const resumed = subscribe(srv.url, srv.rootToken, { lastEventId: secondId });
    await until(() => resumed.changes().length >= 2, 'replay after id');
    assert.equal(resumed.changes()[0]!.data.index, Number(secondId) + 1);
    await resumed.close();

    const keys = srv.keys;
    const root = srv.rootToken;
    await srv.cofre.close();
    srv = await startServer({ dir, initialised: false });
    srv.keys = keys;
    srv.rootToken = root;
    for (const key of keys.slice(0, 2)) await srv.api.call('PUT', 'sys/unseal', { body: { key } });
    const afterRestart = subscribe(srv.url, root, { index: Number(secondId) });
    await until(() => afterRestart.changes().length >= 2, 'replay after restart');
    await srv.api.call('POST', 'secret/data/a/z', { body: { data: { v: '1' } }, token: root });
    await until(() => afterRestart.changes().some((f) => f.data.path === 'secret/a/z'), 'live after restart');
    const idx = afterRestart.changes().map((f) => f.data.index as number);
    assert.equal(new Set(idx).size, idx.length, 'no duplicates');
    await afterRestart.close();
  });

  it('ends the stream of a revoked token, and refuses an invalid one', async () => {
    const t = (
      await srv.api.call('POST', 'auth/token/create', { token: srv.rootToken, body: { policies: ['team-a'] } })
    ).body.auth.client_token;
    const s = subscribe(srv.url, t);
    await until(() => s.frames.length > 0, 'hello');
    await srv.api.call('POST', 'auth/token/revoke', { token: srv.rootToken, body: { token: t } });
    await srv.api.call('POST', 'secret/data/a/after', { token: srv.rootToken, body: { data: { v: '1' } } });
    await until(() => s.ended(), 'stream end');
    assert.equal(s.changes().length, 0);
    assert.ok(s.frames.some((f) => f.event === 'error'));
    const res = await fetch(`${srv.url}/v1/sys/cofre/events`, { headers: { 'x-vault-token': 'cvs.nope' } });
    assert.equal(res.status, 403);
  });

  it('ends the stream as its token is revoked, with no change to carry the news; a renewal does not end it', async () => {
    const t = await tokenOf({ ttl: '1h' });
    const s = subscribe(srv.url, t);
    const other = subscribe(srv.url, await tokenOf({}));
    try {
      await until(() => s.frames.length > 0 && other.frames.length > 0, 'hello');
      // Changes of the token's entry that leave it valid: the stream goes on. One as another node's (or server
      // thread's) change reaches this node, which is what wakes the stream to look its token up again.
      await applyRemoteChanges(srv.cofre.core, [`sys/token/id/${srv.cofre.core.tokens.hashOf(t)}`]);
      assert.equal(
        (await srv.api.call('POST', 'auth/token/renew', { token: srv.rootToken, body: { token: t } })).status,
        200,
      );
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(s.ended(), false, 'a renewal ended the stream');
      await srv.api.call('POST', 'auth/token/revoke', { token: srv.rootToken, body: { token: t } });
      await endsRefused(s, 'stream end', 2000);
      assert.equal(other.ended(), false, "another token's stream ended");
    } finally {
      await s.close();
      await other.close();
    }
  });

  it('ends the stream of a token that expires, with nothing else to tell it: a batch token of 2 s', async () => {
    // A batch token's parent needs a way to make it: the root token's child with the root policy.
    const batch = await tokenOf({ type: 'batch', ttl: '2s' }, await tokenOf({ policies: ['root'] }));
    const s = subscribe(srv.url, batch);
    try {
      await endsRefused(s, "the expired batch token's stream ended", 5000);
    } finally {
      await s.close();
    }
  });

  it("ends a stream opened with a token's last use, and a batch token's when its parent is revoked", async () => {
    const once = subscribe(srv.url, await tokenOf({ num_uses: 1 }));
    const parent = await tokenOf({ policies: ['root'] });
    const b = subscribe(srv.url, await tokenOf({ type: 'batch', ttl: '1h' }, parent));
    try {
      await endsRefused(once, 'the stream of the used-up token ended', 2000);
      await until(() => b.frames.length > 0, 'hello');
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(b.ended(), false);
      assert.equal(
        (await srv.api.call('POST', 'auth/token/revoke', { token: srv.rootToken, body: { token: parent } })).status,
        204,
      );
      await endsRefused(b, "the batch token's stream ended", 2000);
    } finally {
      await once.close();
      await b.close();
    }
  });
});
