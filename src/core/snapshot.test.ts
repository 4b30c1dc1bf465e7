import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { openSqliteStorage, type SqliteStorage } from '../storage/sqlite.js';
import { Barrier } from './barrier.js';
import { restoreSnapshot, snapshotStream, SnapshotError, verifySnapshot, type RestoreOptions } from './snapshot.js';
import type { Storage, StorageOp } from './storage.js';
import {
  copyStore,
  digestStore,
  KEYRING_KEY,
  COPY_IN_PROGRESS_KEY,
  CopyUnderWayError,
  SEAL_CONFIG_KEY,
  StoreNotEmptyError,
  walkEntries,
  type ReadableStore,
} from './store-copy.js';

const dir = mkdtempSync(join(tmpdir(), 'cofre-snapshot-'));
const opened: SqliteStorage[] = [];
let n = 0;
const fresh = (): SqliteStorage => {
  const store = openSqliteStorage(join(dir, `s${n++}.db`));
  opened.push(store);
  return store;
};

after(async () => {
  for (const store of opened) await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Every entry of a store as key → hex, to compare stores byte for byte. */
async function contents(store: ReadableStore): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const e of walkEntries(store)) out.set(e.key, Buffer.from(e.value).toString('hex'));
  return out;
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const restoreBytes = (bytes: Buffer, target: Storage, opts?: RestoreOptions) =>
  restoreSnapshot(Readable.from([bytes]), target, opts);

/** An initialized store as the core leaves one: seal config and wrapped root key in clear, the rest encrypted. */
async function seeded(): Promise<{ store: SqliteStorage; rootKey: Buffer; barrier: Barrier }> {
  const store = fresh();
  const rootKey = randomBytes(32);
  const barrier = new Barrier(store);
  await barrier.initialize(rootKey);
  await barrier.put('logical/kv/metadata/app', Buffer.from('{"current_version":1}'));
  await barrier.put('logical/kv/versions/app/1', Buffer.from('plaintext-password-1'));
  await barrier.put('sys/policy/ops', Buffer.from('path "secret/*" { capabilities = ["read"] }'));
  await barrier.put('sys/token/id/h1', Buffer.from('{"policies":["ops"]}'));
  await barrier.put('deep/a/b/c/d/e', Buffer.from('deep'));
  await barrier.put('ünïcode/ключ', Buffer.from('unicode'));
  await barrier.put('empty', Buffer.alloc(0));
  await store.put('core/seal-config', Buffer.from('{"type":"shamir","secret_shares":3,"secret_threshold":2}'));
  await store.put('core/root-key', randomBytes(60));
  return { store, rootKey, barrier };
}

/** The uncompressed bytes of a snapshot, edited, then compressed again (so only the format's own checks see it). */
function edited(snapshot: Buffer, edit: (raw: Buffer) => Buffer): Buffer {
  return gzipSync(edit(Buffer.from(gunzipSync(snapshot))));
}

describe('snapshots', () => {
  it('round-trips a store byte for byte, holds no plaintext, and opens with the original root key', async () => {
    const { store, rootKey } = await seeded();
    const before = await contents(store);
    const bytes = await collect(snapshotStream(store, { createdAt: new Date('2024-05-01T12:00:00Z') }));
    assert.ok(!gunzipSync(bytes).includes('plaintext-password-1'), 'a snapshot holds only encrypted values');

    const target = fresh();
    const seen: string[] = [];
    const info = await restoreBytes(bytes, target, { onProgress: (p) => seen.push(p.phase) });
    assert.deepEqual(await contents(target), before);
    assert.equal(info.entries, before.size);
    assert.equal(info.createdAt.toISOString(), '2024-05-01T12:00:00.000Z');
    assert.ok(info.sealConfig && info.rootKey && info.hasKeyring);
    assert.deepEqual([...new Set(seen)], ['receiving', 'writing']);

    const restored = new Barrier(target);
    await restored.unseal(rootKey);
    assert.equal(Buffer.from((await restored.get('logical/kv/versions/app/1'))!).toString(), 'plaintext-password-1');
    assert.equal(Buffer.from((await restored.get('ünïcode/ключ'))!).toString(), 'unicode');
    assert.equal((await restored.get('empty'))!.byteLength, 0);
  });

  it('captures the keyring last, so an entry written under a newer key term during the snapshot decrypts', async () => {
    const { store, rootKey, barrier } = await seeded();
    await barrier.put('zz/early', Buffer.from('early'));
    let rotated = false;
    // Rotates the keyring and writes with the new term as soon as the walk reads its first entry, before the walk
    // reaches zz/.
    const racing: ReadableStore = {
      list: (prefix) => store.list(prefix),
      get: async (key) => {
        if (!rotated) {
          rotated = true;
          await barrier.rotate(rootKey);
          await barrier.put('zz/late', Buffer.from('written under term 2'));
        }
        return store.get(key);
      },
    };
    const bytes = await collect(snapshotStream(racing));
    const target = fresh();
    await restoreBytes(bytes, target);
    const late = await target.get('zz/late');
    assert.equal(Buffer.from(late!).readUInt32BE(1), 2, 'the late entry is encrypted under term 2');
    const restored = new Barrier(target);
    await restored.unseal(rootKey);
    assert.equal(Buffer.from((await restored.get('zz/late'))!).toString(), 'written under term 2');
    assert.equal(Buffer.from((await restored.get('zz/early'))!).toString(), 'early');
  });

  describe('refuses a damaged snapshot and leaves the target untouched', async () => {
    const { store } = await seeded();
    const good = await collect(snapshotStream(store));
    const target = fresh();
    await target.put('target/own', Buffer.from('the target keeps this'));
    const targetBefore = await contents(target);

    const flipped = Buffer.from(good);
    flipped[Math.floor(flipped.length / 2)]! ^= 0x01;
    const cases: [string, Buffer, RegExp][] = [
      ['a flipped byte in the file', flipped, /damaged/],
      [
        'a flipped byte in a value (gzip intact)',
        edited(good, (raw) => {
          raw[raw.indexOf('logical/kv/versions/app/1') + 40]! ^= 0x80;
          return raw;
        }),
        /SHA-256 checksum does not match/,
      ],
      ['a truncated file', good.subarray(0, Math.floor(good.length / 2)), /damaged \(it is cut short\)|truncated/],
      ['a snapshot cut before its trailer', edited(good, (raw) => raw.subarray(0, raw.length - 41)), /truncated/],
      ['a wrong magic', edited(good, (raw) => Buffer.concat([Buffer.from('NOTASNAP'), raw.subarray(8)])), /COFRSNAP/],
      ['another format version', edited(good, (raw) => (raw.writeUInt16BE(2, 8), raw)), /format version 2/],
      ['bytes after the trailer', edited(good, (raw) => Buffer.concat([raw, Buffer.from('x')])), /after its trailer/],
      ['a key length past any key', edited(good, (raw) => (raw.writeUInt32BE(0xffffff, 19), raw)), /key of/],
      ['a file that is not gzip', Buffer.from('{"not":"a snapshot"}'), /gzip data is damaged/],
      ['an empty file', Buffer.alloc(0), /shorter than a snapshot header|damaged/],
    ];
    for (const [name, bytes, message] of cases) {
      it(name, async () => {
        let reachedWrite = false;
        const restoring = restoreBytes(bytes, target, { force: true, beforeWrite: () => void (reachedWrite = true) });
        await assert.rejects(restoring, (err: Error) => {
          assert.ok(err instanceof SnapshotError, `${err.name}: ${err.message}`);
          assert.match(err.message, message);
          return true;
        });
        assert.equal(reachedWrite, false);
        assert.deepEqual(await contents(target), targetBefore);
        await assert.rejects(verifySnapshot(Readable.from([bytes])), SnapshotError);
      });
    }
  });

  it('refuses a target that is not empty unless forced; forced, the target ends up equal to the snapshot', async () => {
    const { store } = await seeded();
    const bytes = await collect(snapshotStream(store));
    const target = fresh();
    await target.put('target/own', Buffer.from('x'));
    await target.put(SEAL_CONFIG_KEY, Buffer.from('{"type":"shamir","secret_shares":1,"secret_threshold":1}'));
    await assert.rejects(restoreBytes(bytes, target), (err: Error) => {
      assert.ok(err instanceof StoreNotEmptyError);
      assert.match(err.message, /target store is not empty.*use force/);
      return true;
    });
    assert.equal(Buffer.from((await target.get('target/own'))!).toString(), 'x');

    await restoreBytes(bytes, target, { force: true });
    assert.deepEqual(await contents(target), await contents(store));
  });

  it('two restores into one store at once: the second is refused; a mark left behind needs overUnfinished', async () => {
    // Before, a restore sent to each of two server threads interleaved their writes in one store.
    const { store } = await seeded();
    const bytes = await collect(snapshotStream(store));
    const target = fresh();
    const outcomes = await Promise.allSettled([
      restoreBytes(bytes, target, { force: true }),
      restoreBytes(bytes, target, { force: true }),
    ]);
    assert.deepEqual(outcomes.map((o) => o.status).sort(), ['fulfilled', 'rejected']);
    const refused = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
    assert.ok(refused.reason instanceof CopyUnderWayError, String(refused.reason));
    assert.deepEqual(await contents(target), await contents(store));
    // A mark left by a copy that died: refused, unless the restore says it goes over it (offline).
    await target.put(COPY_IN_PROGRESS_KEY, Buffer.from('{"since":"2026-01-01T00:00:00.000Z"}'));
    await assert.rejects(restoreBytes(bytes, target, { force: true }), CopyUnderWayError);
    await restoreBytes(bytes, target, { force: true, overUnfinished: true });
    assert.deepEqual(await contents(target), await contents(store));
  });

  it('writes in bounded transactions: the seal configuration is deleted first and written last', async () => {
    const { store, barrier } = await seeded();
    for (let i = 0; i < 1000; i++) await barrier.put(`bulk/${String(i).padStart(4, '0')}`, randomBytes(64));
    const bytes = await collect(snapshotStream(store));
    const inner = fresh();
    await inner.put(SEAL_CONFIG_KEY, Buffer.from('{}'));
    await inner.put('old/entry', Buffer.from('old'));
    const transactions: StorageOp[][] = [];
    const recording: Storage = {
      get: (k) => inner.get(k),
      list: (p) => inner.list(p),
      put: async (k, v) => void (await recording.transaction([{ op: 'put', key: k, value: v }])),
      delete: async (k) => void (await recording.transaction([{ op: 'delete', key: k }])),
      transaction: async (ops) => {
        transactions.push(ops);
        await inner.transaction(ops);
      },
      close: async () => {},
    };
    await restoreBytes(bytes, recording, { force: true });
    // The last one may add the seal configuration and the deletion of the copy's mark to a full batch.
    assert.ok(
      transactions.every((t) => t.length <= 256 + 2),
      'no transaction holds more than 256 entries',
    );
    // The seal configuration goes in the commit that marks the store as being copied into; both come back last.
    assert.deepEqual(
      transactions[0]!.map((op) => [op.op, op.key]),
      [
        ['check', COPY_IN_PROGRESS_KEY],
        ['delete', SEAL_CONFIG_KEY],
        ['put', COPY_IN_PROGRESS_KEY],
      ],
    );
    const last = transactions.at(-1)!;
    assert.ok(last.some((op) => op.key === SEAL_CONFIG_KEY && op.op === 'put'));
    assert.ok(last.some((op) => op.key === COPY_IN_PROGRESS_KEY && op.op === 'delete'));
    assert.equal(await inner.get(COPY_IN_PROGRESS_KEY), undefined);
    const sealConfigWrites = transactions.flat().filter((op) => op.key === SEAL_CONFIG_KEY && op.op === 'put');
    assert.equal(sealConfigWrites.length, 1);
    assert.equal(await inner.get('old/entry'), undefined);
    assert.deepEqual(await contents(inner), await contents(store));
  });

  it('taken while writers go on: every entry written before is there, and each entry is one committed value', async () => {
    const store = fresh();
    const before = new Map<string, string>();
    // Large enough that the walk spans many turns of the event loop (the gzip stream pushes back), as a real store.
    for (let i = 0; i < 2000; i++) {
      const key = `pre/${String(i).padStart(5, '0')}`;
      const value = `${key}:${randomBytes(1024).toString('hex')}`;
      before.set(key, value);
      await store.put(key, Buffer.from(value));
    }
    // Listed when the walk gets to it, at the end: so it sees what the writers added meanwhile.
    await store.put('zlive/seed', Buffer.from('seed'));
    const written = new Map<string, Set<string>>();
    let stop = false;
    const writer = async (w: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const hot = `hot/w${w}`;
        const value = `w${w}-${i}`;
        if (!written.has(hot)) written.set(hot, new Set());
        written.get(hot)!.add(value);
        await store.transaction([
          { op: 'put', key: `zlive/w${w}/${String(i).padStart(6, '0')}`, value: Buffer.from(`live/w${w}/${i}`) },
          { op: 'put', key: hot, value: Buffer.from(value) },
        ]);
      }
    };
    const writers = Array.from({ length: 4 }, (_, w) => writer(w));
    const bytes = await collect(snapshotStream(store));
    stop = true;
    await Promise.all(writers);

    const target = fresh();
    await restoreBytes(bytes, target);
    const restored = await contents(target);
    for (const [key, value] of before) assert.equal(Buffer.from(restored.get(key)!, 'hex').toString(), value, key);
    let live = 0;
    for (const [key, hex] of restored) {
      const value = Buffer.from(hex, 'hex').toString();
      if (key.startsWith('zlive/w')) {
        live++;
        const [, w, i] = /^zlive\/(w\d)\/(\d+)$/.exec(key)!;
        assert.equal(value, `live/${w}/${Number(i)}`);
      } else if (key.startsWith('hot/')) assert.ok(written.get(key)?.has(value), `${key}=${value} was written`);
    }
    assert.ok(live > 0, 'the writers wrote during the snapshot');
  });

  it('reads through a read view when the store offers one, and releases it', async () => {
    const { store } = await seeded();
    const events: string[] = [];
    const withView = Object.assign(Object.create(store) as SqliteStorage, {
      openReadView: async () => {
        events.push('open');
        return {
          get: (k: string) => store.get(k),
          list: (p: string) => store.list(p),
          release: async () => void events.push('release'),
        };
      },
      get: () => assert.fail('the live store is not read when a view is offered'),
    });
    await collect(snapshotStream(withView));
    assert.deepEqual(events, ['open', 'release']);
  });
});

describe('copyStore (operator migrate)', () => {
  it('copies every entry, refuses a destination that is not empty unless reset, and the digests agree', async () => {
    const { store } = await seeded();
    const destination = fresh();
    const copied = await copyStore(store, destination);
    assert.deepEqual(await contents(destination), await contents(store));
    const check = await digestStore(destination);
    assert.equal(check.entries, copied.entries);
    assert.equal(check.digest, copied.digest);
    assert.equal((await digestStore(store)).digest, copied.digest);

    await assert.rejects(copyStore(store, destination), StoreNotEmptyError);
    await destination.put('extra/entry', Buffer.from('x'));
    assert.notEqual((await digestStore(destination)).digest, copied.digest);
    await copyStore(store, destination, { reset: true });
    assert.deepEqual(await contents(destination), await contents(store));
    assert.ok((await destination.get(KEYRING_KEY)) !== undefined);
  });
});
