import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openSqliteStorage } from '../storage/sqlite.js';
import { AuditBroker, type AuditSinkFactory, type AuditTableEntry } from './audit-broker.js';
import { GENESIS } from './audit-chain.js';
import { putJson } from './storage-view.js';

const dir = mkdtempSync(join(tmpdir(), 'cofre-audit-broker-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A device type whose open waits until the test releases it, counting opens and closes. */
function heldDevices() {
  const counts = { opens: 0, closes: 0 };
  let release = (): void => undefined;
  const held = new Promise<void>((resolve) => (release = resolve));
  const factory: AuditSinkFactory = () => ({
    open: async () => {
      counts.opens++;
      await held;
      return GENESIS;
    },
    write: async () => undefined,
    close: async () => {
      counts.closes++;
    },
  });
  return { counts, factory, release: () => release() };
}

const entry = (path: string): AuditTableEntry => ({
  path,
  type: 'held',
  description: '',
  options: {},
  local: false,
  salt: Buffer.alloc(32, 1).toString('base64'),
});

describe('AuditBroker: a seal that comes while another node’s change is being loaded', () => {
  it('leaves no device open: the load installs nothing, and what it opened is closed once', async () => {
    const storage = openSqliteStorage(join(dir, 'seal-during-load.db'));
    after(() => storage.close());
    const { counts, factory, release } = heldDevices();
    const broker = new AuditBroker(storage, { held: factory });
    await putJson(storage, 'core/audit', [entry('held/')]);
    const loading = broker.load();
    for (let i = 0; i < 100 && counts.opens === 0; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(counts.opens, 1);
    const sealing = broker.closeAll();
    release();
    await Promise.all([loading, sealing]);
    assert.equal(broker.enabled, false, 'a device stayed open on a sealed server');
    assert.equal(counts.closes, 1);
    // Unsealed again: the device opens anew, and closes once more on the next seal.
    await broker.load();
    assert.equal(broker.enabled, true);
    await broker.closeAll();
    assert.deepEqual(counts, { opens: 2, closes: 2 });
  });
});
