import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer, type InProcessServer } from './support.js';

/** Names every plain JS object answers to through its prototype; as keys or types they must mean nothing. */
const BUILTIN_NAMES = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf', 'isPrototypeOf'];

/** A JSON object with those names as keys, as text: an object literal with "__proto__" would set a prototype. */
const builtinKeyed = (value: (name: string) => string): string =>
  `{${BUILTIN_NAMES.map((name) => `"${name}":${value(name)}`).join(',')}}`;

describe('keys named like built-in object properties', () => {
  let srv: InProcessServer;
  before(async () => {
    srv = await startServer();
  });
  after(() => srv.stop());

  const send = (method: string, path: string, raw: string) =>
    srv.api.call(method, path, { raw, headers: { 'content-type': 'application/json' } });

  /** The names a response holds as its own keys, read from its text (JSON.parse keeps "__proto__" as a key). */
  const ownKeys = (value: unknown): string[] => Object.keys(value as object).sort();

  it('a KV v2 secret keeps them as data and reads them back', async () => {
    const data = builtinKeyed((name) => `"value of ${name}"`);
    assert.equal((await send('POST', 'secret/data/proto', `{"data":${data}}`)).status, 200);
    const read = await srv.api.call('GET', 'secret/data/proto');
    assert.equal(read.status, 200, read.text);
    assert.deepEqual(ownKeys(read.body.data.data), [...BUILTIN_NAMES].sort());
    for (const name of BUILTIN_NAMES) {
      assert.ok(Object.hasOwn(read.body.data.data, name), name);
      assert.equal(read.body.data.data[name], `value of ${name}`, name);
    }
    // Nested objects too, and the secret's subkeys.
    assert.equal((await send('POST', 'secret/data/nested', `{"data":{"outer":${data}}}`)).status, 200);
    const nested = await srv.api.call('GET', 'secret/data/nested');
    assert.deepEqual(ownKeys(nested.body.data.data.outer), [...BUILTIN_NAMES].sort());
  });

  it('a KV v1 secret and KV custom metadata keep them too', async () => {
    assert.equal((await srv.api.call('POST', 'sys/mounts/kv1', { body: { type: 'kv' } })).status, 204);
    assert.equal(
      (
        await send(
          'PUT',
          'kv1/proto',
          builtinKeyed((name) => `"${name}!"`),
        )
      ).status,
      204,
    );
    const read = await srv.api.call('GET', 'kv1/proto');
    assert.deepEqual(ownKeys(read.body.data), [...BUILTIN_NAMES].sort());
    assert.equal(read.body.data.__proto__, '__proto__!');

    const meta = builtinKeyed((name) => `"m-${name}"`);
    assert.equal((await send('POST', 'secret/metadata/proto', `{"custom_metadata":${meta}}`)).status, 204);
    const metadata = await srv.api.call('GET', 'secret/metadata/proto');
    assert.deepEqual(ownKeys(metadata.body.data.custom_metadata), [...BUILTIN_NAMES].sort());
  });

  for (const base of ['mounts', 'auth']) {
    it(`sys/${base}/x with such a type is an unknown type: 400, and nothing is mounted`, async () => {
      for (const type of BUILTIN_NAMES) {
        const res = await srv.api.call('POST', `sys/${base}/p-${type.replace(/_/g, '')}`, { body: { type } });
        assert.equal(res.status, 400, `${type}: ${res.text}`);
        assert.match(res.body.errors.join(' '), new RegExp(`plugin not found in the catalog: ${type}`), type);
      }
      const list = await srv.api.call('GET', `sys/${base}`);
      assert.equal(list.status, 200);
      assert.deepEqual(
        Object.keys(list.body.data).filter((path) => path.startsWith('p-')),
        [],
      );
    });
  }

  it('as request fields they are unknown fields, not broken field declarations', async () => {
    const mount = await send('POST', 'sys/mounts/fields', `{"type":"kv","constructor":"x"}`);
    assert.equal(mount.status, 400);
    assert.match(mount.body.errors.join(' '), /unknown fields: constructor/);
    const token = await send(
      'POST',
      'auth/token/create',
      builtinKeyed(() => '"x"'),
    );
    assert.equal(token.status, 200, token.text);
    assert.match(token.body.warnings.join(' '), /unrecognized parameters/);
    assert.deepEqual(token.body.auth.policies, ['root']);
  });

  it('mount options keep them as options', async () => {
    const options = builtinKeyed((name) => `"o-${name}"`);
    assert.equal((await send('POST', 'sys/mounts/opts', `{"type":"kv","options":${options}}`)).status, 204);
    const read = await srv.api.call('GET', 'sys/mounts/opts');
    assert.deepEqual(ownKeys(read.body.data.options), [...BUILTIN_NAMES].sort());
    assert.equal((await send('POST', 'sys/mounts/opts/tune', `{"options":{"__proto__":"tuned"}}`)).status, 204);
    const tuned = await srv.api.call('GET', 'sys/mounts/opts/tune');
    assert.equal(tuned.body.data.options.__proto__, 'tuned');
    assert.equal(tuned.body.data.options.constructor, 'o-constructor');
  });

  it('a query parameter named __proto__ is a parameter like any other', async () => {
    const res = await srv.api.call('GET', 'secret/data/proto?__proto__=1&version=1');
    assert.equal(res.status, 200, res.text);
  });
});
