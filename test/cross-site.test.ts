// A page of another site, open in an operator's browser, can send simple POSTs (a text/plain body needs no CORS
// preflight) to a server on the operator's network. It cannot add a token, but some writes need none.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer, type InProcessServer } from './support.js';

describe('writes without a token sent by a page of another site', () => {
  let srv: InProcessServer;
  before(async () => {
    srv = await startServer({ initialised: false });
  });
  after(() => srv.stop());

  const init = (headers: Record<string, string>) =>
    fetch(`${srv.url}/v1/sys/init`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', ...headers },
      body: JSON.stringify({ secret_shares: 1, secret_threshold: 1 }),
    });

  it('are refused when the browser says so; other clients and the UI itself are not', async () => {
    // Before, a hostile page initialised a new server with keys only it held.
    for (const site of ['cross-site', 'same-site']) {
      const res = await init({ 'sec-fetch-site': site, origin: 'http://evil.example' });
      const text = await res.text();
      assert.equal(res.status, 403, `${site}: ${text}`);
      assert.match(text, /sent by a page of another site, is refused/);
    }
    const status = await (await fetch(`${srv.url}/v1/sys/init`)).json();
    assert.equal(status.initialized, false, 'the refused requests initialised the server');
    // A browser too old for Fetch Metadata sends Origin alone.
    for (const origin of ['http://evil.example', 'null', 'http://127.0.0.1:1', 'junk']) {
      const res = await init({ origin });
      assert.equal(res.status, 403, `${origin}: ${await res.text()}`);
    }
    const still = await (await fetch(`${srv.url}/v1/sys/init`)).json();
    assert.equal(still.initialized, false, 'a request with a foreign Origin initialised the server');
    // The web UI is same-origin, and curl or the CLI send no such header.
    const same = await init({ 'sec-fetch-site': 'same-origin' });
    assert.equal(same.status, 200, await same.text());
  });

  it('a write whose Origin is the server itself is not refused', async () => {
    const res = await fetch(`${srv.url}/v1/sys/unseal`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', origin: srv.url },
      body: JSON.stringify({ reset: true }),
    });
    assert.equal(res.status, 200, await res.text());
  });
});
