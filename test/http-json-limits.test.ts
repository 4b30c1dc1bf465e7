import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer, type InProcessServer } from './support.js';

const nested = (levels: number, open: string, close: string, leaf = '1'): string =>
  open.repeat(levels) + leaf + close.repeat(levels);
const entries = (n: number): string => Array.from({ length: n }, (_, i) => `"k${i}":0`).join(',');

/** Vault's listener JSON limits, checked before the body is parsed: a 400 naming the limit, never a 500. */
describe('JSON input limits', () => {
  let srv: InProcessServer;
  before(async () => {
    srv = await startServer();
  });
  after(() => srv.stop());

  const write = (raw: string) =>
    srv.api.call('POST', 'secret/data/limits', { raw, headers: { 'content-type': 'application/json' } });

  const refused = async (label: string, raw: string, limit: RegExp): Promise<void> => {
    const started = Date.now();
    const res = await write(raw);
    assert.equal(res.status, 400, `${label}: ${res.status} ${res.text.slice(0, 200)}`);
    assert.match(res.body.errors.join(' '), limit, label);
    assert.ok(res.text.length < 500, `${label}: the body is not quoted back`);
    assert.ok(Date.now() - started < 5_000, `${label}: took ${Date.now() - started} ms`);
  };

  it('50,000 levels of nesting: 400 at once, and the server still serves', async () => {
    await refused('objects', nested(50_000, '{"a":', '}'), /nesting depth/);
    await refused('arrays', `{"data":${nested(50_000, '[', ']')}}`, /nesting depth/);
    await refused('unclosed', '{"a":'.repeat(50_000), /nesting depth/);
    assert.equal((await srv.api.call('GET', 'sys/health')).status, 200);
    assert.equal((await write('{"data":{"v":"after"}}')).status, 200);
    assert.equal((await srv.api.call('GET', 'secret/data/limits')).body.data.data.v, 'after');
  });

  it('200,000 keys in an object: 400', async () => {
    await refused('top level', `{${entries(200_000)}}`, /object exceeds allowed entry count/);
    await refused('in data', `{"data":{${entries(10_001)}}}`, /object exceeds allowed entry count/);
  });

  it('arrays over 10,000 elements: 400', async () => {
    await refused('array', `{"data":{"list":[${'0,'.repeat(10_000)}0]}}`, /array exceeds allowed element count/);
  });

  it('strings over 1 MiB, values or keys: 400', async () => {
    const long = 'x'.repeat(1024 * 1024 + 1);
    await refused('value', `{"data":{"v":"${long}"}}`, /string value exceeds allowed length/);
    await refused('key', `{"data":{"${long}":1}}`, /string value exceeds allowed length/);
  });

  it('bodies at the limits still work', async () => {
    // 500 levels below data (Vault's default depth), brackets and quotes inside strings are not structure.
    const deep = nested(498, '{"a":', '}', '"[{\\"}]"');
    assert.equal((await write(`{"data":{"deep":${deep}}}`)).status, 200);
    const read = await srv.api.call('GET', 'secret/data/limits');
    let node = read.body.data.data.deep;
    for (let i = 0; i < 498; i++) node = node.a;
    assert.equal(node, '[{"}]');

    assert.equal((await write(`{"data":{${entries(10_000)}}}`)).status, 200);
    assert.equal(Object.keys((await srv.api.call('GET', 'secret/data/limits')).body.data.data).length, 10_000);
    assert.equal((await write(`{"data":{"list":[${'0,'.repeat(9_999)}0]}}`)).status, 200);
    assert.equal((await write(`{"data":{"v":"${'y'.repeat(1024 * 1024)}"}}`)).status, 200);
    assert.equal((await srv.api.call('GET', 'secret/data/limits')).body.data.data.v.length, 1024 * 1024);
  });

  it('one level too deep is refused', async () => {
    await refused('501 levels', `{"data":{"deep":${nested(499, '{"a":', '}')}}}`, /nesting depth/);
  });
});
