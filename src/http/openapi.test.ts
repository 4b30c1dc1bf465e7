import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Backend } from '../core/backend.js';
import { compilePaths, MountTable } from '../core/mount-table.js';
import { StorageView } from '../core/storage-view.js';
import { openApiDocument } from './openapi.js';

const handler = async () => undefined;

describe('openApiDocument', () => {
  it('templates path records and leaves regex catch-alls out', () => {
    const backend: Backend = {
      type: 'kv',
      paths: [
        { pattern: 'data/(?<path>.*)', summary: 'd', operations: { read: handler, update: handler } },
        { pattern: 'metadata(?:/(?<path>.*))?', summary: 'm', operations: { list: handler } },
        {
          pattern: 'config',
          summary: 'c',
          fields: { max_versions: { type: 'int', description: 'n' } },
          operations: { update: handler },
        },
        { pattern: 'list/?', summary: 'l', operations: { list: handler } },
        { pattern: '.*', summary: 'catch-all', operations: { read: handler } },
      ],
    };
    const entry = MountTable.newEntry('secret', 'kv');
    const doc = openApiDocument([
      { entry, table: 'mounts', prefix: 'secret/', backend, paths: compilePaths(backend), storage: {} as StorageView },
    ]);
    const paths = doc.paths as Record<
      string,
      Record<string, { parameters: { name: string }[]; requestBody?: unknown; operationId: string }>
    >;
    assert.deepEqual(Object.keys(paths).sort(), [
      '/secret/config',
      '/secret/data/{path}',
      '/secret/list/',
      '/secret/metadata/{path}',
    ]);
    assert.deepEqual(
      paths['/secret/data/{path}']!.get!.parameters.map((p) => p.name),
      ['path'],
    );
    assert.ok(paths['/secret/config']!.post!.requestBody);
    const ids = Object.values(paths).flatMap((item) => Object.values(item).map((op) => op.operationId));
    assert.equal(new Set(ids).size, ids.length, 'operationIds are unique');
  });
});
