import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openSqliteStorage } from '../storage/sqlite.js';
import type { Backend, BackendFactory, SystemView } from './backend.js';
import { MountTable } from './mount-table.js';
import { putJson } from './storage-view.js';

const backend = (type: string): Backend => ({ type, paths: [] });

describe('MountTable', () => {
  it('a reload that another node asks for while the tables load (an unseal) waits for the load and wins', async () => {
    const storage = openSqliteStorage(':memory:');
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let building!: () => void;
    const built = new Promise<void>((resolve) => (building = resolve));
    let stopped = 0;
    const slow: BackendFactory = async () => {
      building();
      await gate;
      return { ...backend('slow'), stop: async () => void stopped++ };
    };
    const plain: BackendFactory = () => backend('plain');
    const table = new MountTable(
      storage,
      { mounts: { slow, cubbyhole: plain }, auth: { token: plain } },
      () => ({}) as SystemView,
    );
    const cubbyhole = MountTable.newEntry('cubbyhole', 'cubbyhole');
    const gone = MountTable.newEntry('gone', 'slow');
    await putJson(storage, 'core/mounts', [cubbyhole, gone]);
    await putJson(storage, 'core/auth', [MountTable.newEntry('token', 'token')]);

    const loading = table.load({ mounts: [], auth: [] });
    await built; // the load read the tables and is building `gone/`
    // Another node disables gone/ and tells this one, whose load read the table before.
    await putJson(storage, 'core/mounts', [cubbyhole]);
    const reloading = table.reload();
    await Promise.race([reloading, new Promise((resolve) => setTimeout(resolve, 50))]);
    release();
    await Promise.all([loading, reloading]);

    // (Paths, not the mounts themselves: a failure's report would serialise the whole object graph.)
    const served = table.entries('mounts').map((e) => e.path);
    assert.deepEqual(served, ['cubbyhole/'], 'a mount disabled elsewhere is still served here');
    assert.equal(table.get('mounts', 'gone/') === undefined, true);
    assert.equal(stopped, 1, 'the backend the load built for gone/ was stopped');
    await storage.close();
  });
});
