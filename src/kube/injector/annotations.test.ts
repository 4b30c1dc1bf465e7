import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AnnotationError, parseAnnotations } from './annotations.js';

const defaults = { authMount: 'kubernetes', audience: 'cofre', filesDir: '/cofre/secrets' };
const parse = (annotations: Record<string, string>) => parseAnnotations(annotations, defaults);
const base = { 'cofre.dev/role': 'app' };

/** Asserts that the annotations are refused with a message naming `annotation` and matching `why`. */
function refused(annotations: Record<string, string>, annotation: string, why: RegExp): void {
  assert.throws(
    () => parse(annotations),
    (err: Error) => {
      assert.ok(err instanceof AnnotationError, `not an AnnotationError: ${err.message}`);
      assert.ok(err.message.startsWith(`annotation ${annotation}:`), err.message);
      assert.match(err.message, why);
      return true;
    },
  );
}

describe('injector annotations', () => {
  it('reads the contract example: a KV file, a templated dynamic credential, an env item', () => {
    const request = parse({
      ...base,
      'cofre.dev/auth-path': 'auth/k8s-east',
      'cofre.dev/sidecar': 'true',
      'cofre.dev/secret-db': 'secret/app/db',
      'cofre.dev/keys-db': 'password',
      'cofre.dev/filename-db': 'db.json',
      'cofre.dev/creds-pg': 'database/creds/app',
      'cofre.dev/filename-pg': 'pg.conf',
      'cofre.dev/filemode-pg': '440',
      'cofre.dev/template-pg': 'user={{ .Data.username }} password={{ .Data.password }}',
      'cofre.dev/secret-api': 'secret/app/api',
      'cofre.dev/env-api': 'API_KEY=key',
      'cofre.dev/content-hash': 'abc',
      'cofre.dev/inject': 'true',
    });
    assert.equal(request.role, 'app');
    assert.equal(request.authMount, 'k8s-east');
    assert.equal(request.audience, 'cofre');
    assert.equal(request.filesDir, '/cofre/secrets');
    assert.equal(request.sidecar, true);
    assert.equal(request.revokeOnExit, true);
    assert.deepEqual(request.fileItems, [
      { name: 'db', kv: 'secret/app/db', keys: ['password'], file: { path: 'db.json', mode: '0400', format: 'json' } },
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
    ]);
    assert.deepEqual(request.envItems, [{ name: 'api', kv: 'secret/app/api', env: { API_KEY: 'key' } }]);
  });

  it('applies the pod-wide settings and the defaults', () => {
    const request = parse({
      ...base,
      'cofre.dev/audience': 'vault',
      'cofre.dev/files-dir': '/etc/secrets/',
      'cofre.dev/revoke-on-exit': 'false',
      'cofre.dev/on-change-signal': 'SIGHUP',
      'cofre.dev/on-change-pid-file': '/cofre/secrets/.app.pid',
      'cofre.dev/command': '["/app/server", "--verbose"]',
      'cofre.dev/mode': 'env',
      'cofre.dev/containers': 'app, worker',
      'cofre.dev/secret-db': '/secret/app/db/',
      'cofre.dev/keys-db': 'user,pass-word',
    });
    assert.equal(request.audience, 'vault');
    assert.equal(request.filesDir, '/etc/secrets');
    assert.equal(request.revokeOnExit, false);
    assert.deepEqual(request.onChange, { signal: 'SIGHUP', pid_file: '/cofre/secrets/.app.pid' });
    assert.deepEqual(request.command, ['/app/server', '--verbose']);
    assert.deepEqual(request.containers, ['app', 'worker']);
    // mode env without a mapping: one variable per key, named after the item and the key.
    assert.deepEqual(request.envItems, [
      {
        name: 'db',
        kv: 'secret/app/db',
        keys: ['user', 'pass-word'],
        env: { DB_USER: 'user', DB_PASS_WORD: 'pass-word' },
      },
    ]);
    assert.deepEqual(request.fileItems, []);
    // A file annotation makes an item a file, whatever the pod's mode.
    const mixed = parse({
      ...base,
      'cofre.dev/mode': 'env',
      'cofre.dev/secret-a': 'kv/a',
      'cofre.dev/format-a': 'env',
    });
    assert.deepEqual(mixed.fileItems, [{ name: 'a', kv: 'kv/a', file: { path: 'a', mode: '0400', format: 'env' } }]);
  });

  it('refuses every mistake with a message naming the annotation', () => {
    const kv = { ...base, 'cofre.dev/secret-db': 'secret/app/db' };
    refused({ 'cofre.dev/secret-db': 'secret/db' }, 'cofre.dev/role', /missing/);
    refused({ ...kv, 'cofre.dev/role': 'a b' }, 'cofre.dev/role', /not a role name/);
    refused(base, 'cofre.dev/secret-<name>', /names no secret/);
    refused({ ...kv, 'cofre.dev/sidecar': 'yes' }, 'cofre.dev/sidecar', /"true" or "false", got "yes"/);
    refused({ ...kv, 'cofre.dev/mode': 'files' }, 'cofre.dev/mode', /"file" or "env"/);
    refused({ ...kv, 'cofre.dev/files-dir': 'secrets' }, 'cofre.dev/files-dir', /absolute directory/);
    refused({ ...kv, 'cofre.dev/files-dir': '/a/../etc' }, 'cofre.dev/files-dir', /absolute directory/);
    refused({ ...kv, 'cofre.dev/files-dir': '/' }, 'cofre.dev/files-dir', /cannot be \//);
    refused({ ...kv, 'cofre.dev/files-dir': '/cofre/bin/' }, 'cofre.dev/files-dir', /its own volumes/);
    refused({ ...kv, 'cofre.dev/auth-path': 'auth/../sys' }, 'cofre.dev/auth-path', /mount/);
    refused({ ...kv, 'cofre.dev/on-change-signal': 'SIGKILLME' }, 'cofre.dev/on-change-signal', /SIGHUP/);
    refused({ ...kv, 'cofre.dev/on-change-pid-file': '/x' }, 'cofre.dev/on-change-pid-file', /without/);
    refused({ ...kv, 'cofre.dev/on-change-process': 'app' }, 'cofre.dev/on-change-process', /without/);
    const signal = { ...kv, 'cofre.dev/on-change-signal': 'SIGHUP' };
    refused(signal, 'cofre.dev/on-change-signal', /say which process gets SIGHUP/);
    refused(
      { ...signal, 'cofre.dev/on-change-process': 'a', 'cofre.dev/on-change-pid-file': '/p' },
      'cofre.dev/on-change-process',
      /not both/,
    );
    refused({ ...signal, 'cofre.dev/on-change-process': 'a-name-too-long-x' }, 'cofre.dev/on-change-process', /15/);
    refused({ ...signal, 'cofre.dev/on-change-process': 'bin/sh' }, 'cofre.dev/on-change-process', /15/);
    refused({ ...kv, 'cofre.dev/command': '/app/server' }, 'cofre.dev/command', /JSON array/);
    refused({ ...kv, 'cofre.dev/command': '[]' }, 'cofre.dev/command', /non-empty/);
    refused({ ...kv, 'cofre.dev/command': '["a", 1]' }, 'cofre.dev/command', /strings/);
    refused({ ...kv, 'cofre.dev/containers': ' , ' }, 'cofre.dev/containers', /container names/);
    refused({ ...kv, 'cofre.dev/secrets-db': 'x' }, 'cofre.dev/secrets-db', /unknown annotation/);
    refused({ ...kv, 'cofre.dev/roles': 'x' }, 'cofre.dev/roles', /unknown annotation/);
    refused({ ...base, 'cofre.dev/secret-DB': 'secret/db' }, 'cofre.dev/secret-DB', /item names/);
    refused({ ...base, 'cofre.dev/keys-db': 'a' }, 'cofre.dev/keys-db', /no cofre.dev\/secret-db/);
    refused({ ...kv, 'cofre.dev/creds-db': 'database/creds/x' }, 'cofre.dev/creds-db', /not both/);
    refused({ ...base, 'cofre.dev/secret-db': 'secret' }, 'cofre.dev/secret-db', /<mount>\/<path>/);
    refused({ ...base, 'cofre.dev/creds-db': 'database/../sys' }, 'cofre.dev/creds-db', /<mount>\/<path>/);
    refused({ ...kv, 'cofre.dev/keys-db': ',' }, 'cofre.dev/keys-db', /comma-separated/);
    refused({ ...kv, 'cofre.dev/filename-db': '../db' }, 'cofre.dev/filename-db', /relative file path/);
    refused({ ...kv, 'cofre.dev/filename-db': '/etc/db' }, 'cofre.dev/filename-db', /relative file path/);
    refused({ ...kv, 'cofre.dev/filemode-db': '999' }, 'cofre.dev/filemode-db', /octal file mode.*"999"/);
    refused({ ...kv, 'cofre.dev/filemode-db': '04000' }, 'cofre.dev/filemode-db', /octal/);
    refused({ ...kv, 'cofre.dev/format-db': 'yaml' }, 'cofre.dev/format-db', /env, json, raw, template/);
    refused({ ...kv, 'cofre.dev/format-db': 'template' }, 'cofre.dev/template-db', /missing/);
    refused({ ...kv, 'cofre.dev/format-db': 'json', 'cofre.dev/template-db': 'x' }, 'cofre.dev/format-db', /template/);
    refused({ ...kv, 'cofre.dev/format-db': 'raw', 'cofre.dev/keys-db': 'a,b' }, 'cofre.dev/keys-db', /exactly one/);
    refused({ ...kv, 'cofre.dev/env-db': 'API_KEY' }, 'cofre.dev/env-db', /VAR=field/);
    refused({ ...kv, 'cofre.dev/env-db': '1X=key' }, 'cofre.dev/env-db', /VAR=field/);
    refused(
      { ...kv, 'cofre.dev/env-db': 'A=key', 'cofre.dev/filename-db': 'x' },
      'cofre.dev/filename-db',
      /environment/,
    );
    refused({ ...kv, 'cofre.dev/mode': 'env' }, 'cofre.dev/keys-db', /list them/);
    refused(
      { ...kv, 'cofre.dev/secret-x': 'secret/x', 'cofre.dev/filename-x': 'db' },
      'cofre.dev/filename-x',
      /also written by the item db/,
    );
    refused(
      { ...kv, 'cofre.dev/env-db': 'A=a', 'cofre.dev/secret-x': 'secret/x', 'cofre.dev/env-x': 'A=b' },
      'cofre.dev/env-x',
      /A is also set by the item db/,
    );
  });

  it('quotes long values cut short', () => {
    assert.throws(
      () => parse({ ...base, 'cofre.dev/secret-db': 'secret/db', 'cofre.dev/mode': 'x'.repeat(500) }),
      (err: Error) => err.message.length < 200 && /\.\.\."$/.test(err.message),
    );
  });
});
