import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PathRecord } from '../backend.js';
import { compilePaths } from '../mount-table.js';
import { matchPath, validateApiPath } from './route.js';

const record = (pattern: string): PathRecord => ({ pattern, summary: pattern, operations: {} });

describe('routing', () => {
  it('refuses dot segments and empty segments whether or not the path looks ordinary', () => {
    for (const bad of [
      '/sys/mounts',
      'secret//data',
      'secret/data//k',
      'secret/../sys/mounts',
      'secret/./data/k',
      'secret/%2e%2e/sys',
      'secret/%2E/k',
      '..',
      '/',
    ]) {
      assert.throws(() => validateApiPath(bad), /invalid path/, bad);
    }
    for (const good of ['', 'secret/data/k', 'secret/data/k/', 'pki/issue/example.com', 'kv/a%20b', 'kv/.hidden']) {
      assert.doesNotThrow(() => validateApiPath(good), good);
    }
  });

  it('matches the first record, hands each request params of its own and stays right past its memory', () => {
    const [config, data, any] = [record('config'), record('data/(?<path>.*)'), record('(?<rest>.*)')];
    const paths = compilePaths({ paths: [config, data, any] } as never);
    const first = matchPath(paths, 'data/a/b');
    assert.equal(first?.record, data);
    assert.deepEqual(first?.params, { path: 'a/b' });
    first!.params.path = 'changed by a handler';
    assert.deepEqual(matchPath(paths, 'data/a/b')?.params, { path: 'a/b' }, 'a remembered match is not shared');
    assert.equal(matchPath(paths, 'config')?.record, config);
    assert.equal(matchPath(compilePaths({ paths: [config] } as never), 'other'), undefined);
    // A path too long to be remembered (routing runs before the token is checked) is matched all the same.
    const long = `data/${'a'.repeat(300)}`;
    const once = matchPath(paths, long)!;
    once.params.path = 'changed';
    assert.deepEqual(matchPath(paths, long)?.params, { path: 'a'.repeat(300) });
    assert.equal(matchPath(paths, long)?.record, data);
    // More distinct paths than are remembered: every one still routes to its own record and params.
    for (let i = 0; i < 10_000; i++) {
      const found = matchPath(paths, i % 2 ? `data/k${i}` : `x${i}`);
      assert.equal(found?.record, i % 2 ? data : any);
      assert.deepEqual(found?.params, i % 2 ? { path: `k${i}` } : { rest: `x${i}` });
    }
  });
});
