import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseConfig } from './config.js';

const parse = (value: unknown) => parseConfig(JSON.stringify(value));
const base = { auth: { role: 'app' } };
const refused = (value: unknown, message: RegExp) =>
  assert.throws(
    () => parse(value),
    (err: Error) => err instanceof ConfigError && message.test(err.message),
  );

describe('COFRE_AGENT_CONFIG', () => {
  it('reads the contract example with its defaults', () => {
    const config = parse({
      auth: { mount: 'kubernetes', role: 'app', token_path: '/var/run/secrets/cofre/token' },
      files_dir: '/cofre/secrets',
      install_to: '/cofre/bin',
      revoke_on_exit: true,
      on_change: { signal: 'SIGHUP', process_name: 'server' },
      items: [
        {
          name: 'db',
          kv: 'secret/app/db',
          keys: ['password'],
          file: { path: 'db.json', mode: '0400', format: 'json' },
        },
        {
          name: 'pg',
          path: 'database/creds/app',
          file: {
            path: 'pg.conf',
            mode: '0440',
            format: 'template',
            template: 'user={{ .Data.username }} password={{ .Data.password }}',
          },
        },
        { name: 'api', kv: 'secret/app/api', env: { API_KEY: 'key' } },
      ],
    });
    assert.equal(config.items.length, 3);
    assert.deepEqual(config.items[1]!.source, { kind: 'path', path: 'database/creds/app' });
    assert.equal((config.items[1]!.output as { mode: number }).mode, 0o440);
    assert.deepEqual(config.onChange, { signal: 'SIGHUP', processName: 'server' });

    const defaults = parse({ ...base, items: [{ name: 'a', kv: 'secret/a', file: { path: 'a' } }] });
    assert.deepEqual(defaults.auth, { mount: 'kubernetes', role: 'app', tokenPath: '/var/run/secrets/cofre/token' });
    assert.equal(defaults.filesDir, '/cofre/secrets');
    assert.equal(defaults.revokeOnExit, true);
    assert.equal(defaults.installTo, undefined);
    assert.deepEqual(defaults.items[0]!.output, { kind: 'file', path: 'a', mode: 0o400, format: 'json' });
  });

  it('refuses what is missing, unknown or malformed, naming the item and the field', () => {
    assert.throws(() => parseConfig(undefined), /COFRE_AGENT_CONFIG is not set/);
    assert.throws(() => parseConfig('{'), /not valid JSON/);
    refused({ items: [] }, /"auth" is required/);
    refused({ auth: {}, items: [] }, /auth: "role" is required/);
    refused({ ...base, items: [], extra: 1 }, /unknown field "extra"/);
    refused({ ...base, files_dir: 'relative', items: [] }, /"files_dir" must be an absolute path/);
    // The state file holds the agent's token: never where the application reads its files.
    refused({ ...base, state_file: '/cofre/secrets/state.json', items: [] }, /state_file: must not be in files_dir/);
    refused({ ...base, state_file: '/cofre/secrets/d/s.json', items: [] }, /state_file: must not be in files_dir/);
    refused({ ...base, state_file: 'state.json', items: [] }, /"state_file" must be an absolute path/);
    assert.equal(
      parse({ ...base, state_file: '/cofre/state/agent.json', items: [] }).stateFile,
      '/cofre/state/agent.json',
    );
    assert.equal(
      parse({ ...base, state_file: '/cofre/secrets2/a.json', items: [] }).stateFile,
      '/cofre/secrets2/a.json',
    );
    refused({ ...base, revoke_on_exit: 'no', items: [] }, /revoke_on_exit: must be true or false/);
    refused({ ...base, items: [{ kv: 'secret/a', file: { path: 'a' } }] }, /items\[0\]: "name" is required/);
    refused({ ...base, items: [{ name: 'a b', kv: 'secret/a', file: { path: 'a' } }] }, /items\[0\]: "name" "a b"/);
    refused({ ...base, items: [{ name: 'a', file: { path: 'a' } }] }, /item "a": give exactly one of "kv" and "path"/);
    refused({ ...base, items: [{ name: 'a', kv: 'secret/a' }] }, /item "a": give exactly one of "file" and "env"/);
    refused({ ...base, items: [{ name: 'a', kv: 'secret/../a', env: { A: 'x' } }] }, /item "a": "kv" "secret\/..\/a"/);
    refused({ ...base, items: [{ name: 'a', kv: 'secret/a', file: { path: '/etc/passwd' } }] }, /item "a": file.path/);
    refused(
      { ...base, items: [{ name: 'a', kv: 'secret/a', file: { path: 'a', format: 'yaml' } }] },
      /file.format "yaml"/,
    );
    refused(
      { ...base, items: [{ name: 'a', kv: 'secret/a', file: { path: 'a', template: 'x' } }] },
      /item "a": file.template is only read with file.format "template"/,
    );
    refused(
      { ...base, items: [{ name: 'a', kv: 'secret/a', keys: ['x', 'y'], file: { path: 'a', format: 'raw' } }] },
      /item "a": format "raw" writes exactly one key/,
    );
    refused({ ...base, items: [{ name: 'a', kv: 'secret/a', env: { '1A': 'x' } }] }, /item "a": env var name "1A"/);
    refused(
      { ...base, items: [{ name: 'a', kv: 'secret/a', keys: ['x'], env: { A: 'y' } }] },
      /item "a": env var A names field "y", which "keys" leaves out/,
    );
  });

  it('refuses two items with one name, one file or one env var', () => {
    const a = { name: 'a', kv: 'secret/a', file: { path: 'f' } };
    refused({ ...base, items: [a, { ...a }] }, /item "a": the name is used by another item/);
    refused({ ...base, items: [a, { ...a, name: 'b' }] }, /item "b": file.path "f" is used by another item/);
    refused(
      {
        ...base,
        items: [
          { name: 'a', kv: 'secret/a', env: { X: 'k' } },
          { name: 'b', kv: 'secret/b', env: { X: 'k' } },
        ],
      },
      /item "b": env var X is also set by item "a"/,
    );
  });

  it('on_change needs a process to signal, or exit', () => {
    const items: unknown[] = [];
    refused({ ...base, items, on_change: { signal: 'SIGHUP' } }, /"signal" needs "pid_file" or "process_name"/);
    refused({ ...base, items, on_change: { signal: 'SIGNOPE', pid_file: '/p' } }, /"signal" SIGNOPE is not a signal/);
    refused({ ...base, items, on_change: { pid_file: '/p' } }, /"signal" is required/);
    refused({ ...base, items, on_change: { signal: 'HUP', pid_file: '/p', process_name: 'x' } }, /not both/);
    assert.equal(
      parse({ ...base, items, on_change: { signal: 'hup', process_name: 'nginx' } }).onChange?.signal,
      'SIGHUP',
    );
    assert.deepEqual(parse({ ...base, items, on_change: { exit: true } }).onChange, {
      exit: true,
      processName: undefined,
    });
  });
});
