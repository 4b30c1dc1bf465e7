import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer, type InProcessServer } from './support.js';

describe('seal and unseal', () => {
  let srv: InProcessServer;
  before(async () => {
    srv = await startServer({ initialised: false });
  });
  after(() => srv.stop());

  it('reports an uninitialised server and refuses data paths', async () => {
    const health = await srv.api.call('GET', 'sys/health');
    assert.equal(health.status, 501);
    assert.equal(health.body.initialized, false);
    const data = await srv.api.call('GET', 'secret/data/x', { token: 'whatever' });
    assert.equal(data.status, 503);
    assert.deepEqual(data.body, { errors: ['Vault is sealed'] });
  });

  it('initialises with 5 shares, threshold 3, and stays sealed', async () => {
    const bad = await srv.api.call('PUT', 'sys/init', { body: { secret_shares: 2, secret_threshold: 3 } });
    assert.equal(bad.status, 400);
    const init = await srv.api.call('PUT', 'sys/init', { body: { secret_shares: 5, secret_threshold: 3 } });
    assert.equal(init.status, 200);
    assert.equal(init.body.keys.length, 5);
    assert.equal(init.body.keys_base64.length, 5);
    assert.match(init.body.root_token, /^cvs\./);
    srv.keys = init.body.keys;
    srv.rootToken = init.body.root_token;
    const again = await srv.api.call('PUT', 'sys/init', { body: { secret_shares: 1, secret_threshold: 1 } });
    assert.equal(again.status, 400);
    const status = await srv.api.call('GET', 'sys/seal-status');
    assert.equal(status.body.sealed, true);
    assert.equal(status.body.t, 3);
    assert.equal(status.body.n, 5);
    assert.equal((await srv.api.call('GET', 'sys/health')).status, 503);
    const data = await srv.api.call('GET', 'secret/data/x', { token: srv.rootToken });
    assert.equal(data.status, 503);
  });

  it('fewer than the threshold never unseals; reset discards progress', async () => {
    let s = await srv.api.call('PUT', 'sys/unseal', { body: { key: srv.keys[0] } });
    assert.equal(s.body.progress, 1);
    s = await srv.api.call('PUT', 'sys/unseal', { body: { key: srv.keys[1] } });
    assert.equal(s.body.progress, 2);
    assert.equal(s.body.sealed, true);
    s = await srv.api.call('PUT', 'sys/unseal', { body: { reset: true } });
    assert.equal(s.body.progress, 0);
    s = await srv.api.call('PUT', 'sys/unseal', { body: { key: srv.keys[2] } });
    assert.equal(s.body.progress, 1);
    assert.equal(s.body.sealed, true);
    await srv.api.call('PUT', 'sys/unseal', { body: { reset: true } });
  });

  it('a wrong or malformed key never unseals', async () => {
    const forged = Buffer.from(srv.keys[2]!, 'hex');
    forged[5] = forged[5]! ^ 0xff;
    await srv.api.call('PUT', 'sys/unseal', { body: { key: srv.keys[0] } });
    await srv.api.call('PUT', 'sys/unseal', { body: { key: srv.keys[1] } });
    const wrong = await srv.api.call('PUT', 'sys/unseal', { body: { key: forged.toString('hex') } });
    assert.equal(wrong.status, 400);
    assert.match(wrong.body.errors[0], /invalid key|do not/);
    const status = await srv.api.call('GET', 'sys/seal-status');
    assert.equal(status.body.sealed, true);
    assert.equal(status.body.progress, 0);
    const junk = await srv.api.call('PUT', 'sys/unseal', { body: { key: 'not a key!' } });
    assert.equal(junk.status, 400);
    const empty = await srv.api.call('PUT', 'sys/unseal', { body: {} });
    assert.equal(empty.status, 400);
  });

  it('threshold keys (base64 or hex) unseal; data then round-trips', async () => {
    const init = srv.keys;
    await srv.api.call('PUT', 'sys/unseal', { body: { key: Buffer.from(init[4]!, 'hex').toString('base64') } });
    await srv.api.call('PUT', 'sys/unseal', { body: { key: init[2]! } });
    const s = await srv.api.call('PUT', 'sys/unseal', { body: { key: init[0]! } });
    assert.equal(s.body.sealed, false);
    assert.equal((await srv.api.call('GET', 'sys/health')).status, 200);
    const put = await srv.api.call('POST', 'secret/data/app', {
      token: srv.rootToken,
      body: { data: { password: 'hunter2' } },
    });
    assert.equal(put.status, 200, put.text);
  });

  it('sys/rotate adds a key term and entries written before still decrypt', async () => {
    const before = await srv.api.call('GET', 'sys/key-status', { token: srv.rootToken });
    assert.equal(before.body.data.term, 1);
    const rotated = await srv.api.call('PUT', 'sys/rotate', { token: srv.rootToken });
    assert.equal(rotated.status, 204);
    const afterRotate = await srv.api.call('GET', 'sys/key-status', { token: srv.rootToken });
    assert.equal(afterRotate.body.data.term, 2);
    await srv.api.call('POST', 'secret/data/new', { token: srv.rootToken, body: { data: { v: 'after' } } });
    // Seal and unseal so nothing is served from memory.
    assert.equal((await srv.api.call('PUT', 'sys/seal', { token: srv.rootToken })).status, 204);
    assert.equal((await srv.api.call('GET', 'secret/data/app', { token: srv.rootToken })).status, 503);
    for (const key of srv.keys.slice(0, 3)) await srv.api.call('PUT', 'sys/unseal', { body: { key } });
    const old = await srv.api.call('GET', 'secret/data/app', { token: srv.rootToken });
    assert.equal(old.body.data.data.password, 'hunter2');
    const fresh = await srv.api.call('GET', 'secret/data/new', { token: srv.rootToken });
    assert.equal(fresh.body.data.data.v, 'after');
    assert.equal((await srv.api.call('GET', 'sys/key-status', { token: srv.rootToken })).body.data.term, 2);
  });

  it('sealing needs a token with sudo', async () => {
    const anon = await srv.api.call('PUT', 'sys/seal');
    assert.equal(anon.status, 403);
  });
});
