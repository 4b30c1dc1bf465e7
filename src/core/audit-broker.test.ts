import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openSqliteStorage } from '../storage/sqlite.js';
import { AuditBroker, AuditFailure, type AuditSinkFactory, type AuditTableEntry } from './audit-broker.js';
import { GENESIS } from './audit-chain.js';
import type { AuditEvent } from './audit-format.js';
import type { Storage } from './storage.js';
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

describe('AuditBroker: a reload of the audit table that fails', () => {
  it('refuses requests until a load succeeds, instead of serving them without a device enabled elsewhere', async () => {
    const sqlite = openSqliteStorage(join(dir, 'failed-reload.db'));
    after(() => sqlite.close());
    let failing = false;
    // The store as the broker reads it, which stops answering reads of the audit table while `failing`.
    const storage: Storage = {
      get: (key) => (failing ? Promise.reject(new Error('connection refused')) : sqlite.get(key)),
      put: (key, value) => sqlite.put(key, value),
      delete: (key) => sqlite.delete(key),
      list: (prefix) => sqlite.list(prefix),
      transaction: (ops) => sqlite.transaction(ops),
      close: () => sqlite.close(),
    };
    const lines: Record<string, string[]> = {};
    const recording: AuditSinkFactory = (options) => ({
      open: async () => GENESIS,
      write: async (text) => void (lines[options.name!] ??= []).push(text),
      close: async () => undefined,
    });
    const broker = new AuditBroker(storage, { held: recording });
    const device = (name: string) => ({ ...entry(`${name}/`), options: { name } });
    await putJson(sqlite, 'core/audit', [device('a')]);
    await broker.load();
    // Another node enables a second device; this node cannot read the table when it hears of it.
    await putJson(sqlite, 'core/audit', [device('a'), device('b')]);
    failing = true;
    await assert.rejects(broker.load(), /connection refused/);
    const event = (id: string): AuditEvent => ({
      time: new Date(),
      type: 'request',
      requestId: id,
      operation: 'read',
      path: 'secret/data/x',
      mountType: 'kv',
      remoteAddress: '127.0.0.1',
      clientToken: undefined,
      caller: undefined,
      requestData: {},
      error: '',
    });
    await assert.rejects(broker.log(event('while-failing')), AuditFailure);
    failing = false;
    await broker.log(event('after'));
    // Nothing of the refused request reached a device; the next one went to both, the new device included.
    assert.equal(lines.a?.join('').includes('while-failing'), false);
    assert.equal(lines.a?.length, 1);
    assert.equal(lines.b?.length, 1);
    await broker.closeAll();
  });
});

describe('AuditBroker: the last device disabled while a request is on record', () => {
  const event = (type: 'request' | 'response', id: string): AuditEvent => ({
    time: new Date(),
    type,
    requestId: id,
    operation: 'update',
    path: 'sys/audit/held',
    mountType: 'system',
    remoteAddress: '127.0.0.1',
    clientToken: undefined,
    caller: undefined,
    requestData: {},
    error: '',
  });

  /** A broker with these devices open and a request on record (its request entry written), then `held/` disabled. */
  async function disabledWhileOnRecord(file: string, paths: string[]): Promise<AuditBroker> {
    const storage = openSqliteStorage(join(dir, file));
    after(() => storage.close());
    const { factory, release } = heldDevices();
    release();
    const broker = new AuditBroker(storage, { held: factory });
    await putJson(storage, 'core/audit', paths.map(entry));
    await broker.load();
    await broker.log(event('request', 'on-record'));
    await broker.disable('held/');
    return broker;
  }

  it('closes on seal at once: no device is left to write the response entry it waited for', async () => {
    // A disable's own request is one such request: its response comes after its device is gone.
    const broker = await disabledWhileOnRecord('last-device-disabled.db', ['held/']);
    assert.equal(broker.wanted, false);
    const started = Date.now();
    await broker.closeAll();
    // Waited the whole drain (10 s) before: the response entry that would end the wait is never logged.
    assert.ok(Date.now() - started < 2_000, `closing took ${Date.now() - started} ms`);
  });

  it('closes at once when the last device went while the request entry was being written', async () => {
    const storage = openSqliteStorage(join(dir, 'disabled-during-write.db'));
    after(() => storage.close());
    let release = (): void => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    let writing = (): void => undefined;
    const inWrite = new Promise<void>((resolve) => (writing = resolve));
    const slow: AuditSinkFactory = () => ({
      open: async () => GENESIS,
      write: async () => {
        writing();
        await held;
      },
      close: async () => undefined,
    });
    const broker = new AuditBroker(storage, { held: slow });
    await putJson(storage, 'core/audit', [entry('held/')]);
    await broker.load();
    const logging = broker.log(event('request', 'on-record'));
    await inWrite;
    const disabling = broker.disable('held/');
    await new Promise((r) => setTimeout(r, 50));
    release();
    await Promise.all([logging, disabling]);
    const started = Date.now();
    await broker.closeAll();
    assert.ok(Date.now() - started < 2_000, `closing took ${Date.now() - started} ms`);
  });

  it('still waits for a response entry while another device is there to write it', async () => {
    const broker = await disabledWhileOnRecord('one-of-two-disabled.db', ['held/', 'other/']);
    let closed = false;
    const closing = broker.closeAll().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(closed, false, 'closed before the response entry was written');
    await broker.log(event('response', 'on-record'));
    await closing;
  });
});
