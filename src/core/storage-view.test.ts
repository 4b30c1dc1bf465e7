import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StorageConflictError, type Storage } from './storage.js';
import { jsonBytes, parseJson, parseJsonShared, StorageView } from './storage-view.js';

describe('stored JSON', () => {
  it('parses a bytes object once for every reader, frozen throughout; parseJson still gives a copy to change', () => {
    const bytes = jsonBytes({ versions: { '1': { destroyed: false } }, list: [{ a: 1 }] });
    const shared = parseJsonShared<{ versions: Record<string, { destroyed: boolean }>; list: { a: number }[] }>(bytes);
    assert.equal(parseJsonShared(bytes), shared, 'the same bytes, the same parse');
    assert.throws(() => {
      shared.versions['1']!.destroyed = true;
    }, TypeError);
    assert.throws(() => shared.list.push({ a: 2 }), TypeError);
    assert.throws(() => {
      shared.list[0]!.a = 2;
    }, TypeError);
    assert.equal(shared.versions['1']!.destroyed, false);

    const own = parseJson<typeof shared>(bytes);
    own.versions['1']!.destroyed = true;
    assert.equal(shared.versions['1']!.destroyed, false, 'a copy to change is not the shared one');
    // New bytes (what a write stores) are parsed anew: nothing is remembered by content.
    assert.notEqual(parseJsonShared(jsonBytes({ versions: {}, list: [] })), shared);
    assert.equal(parseJsonShared(Buffer.from(bytes)) === shared, false);
  });
});

describe('StorageView', () => {
  it("names a refusal's key and what its checked keys held as the view's own keys, and nothing outside it", async () => {
    const found = new Map<string, Uint8Array | null>([
      ['mount/a/metadata/k', Buffer.from('v')],
      ['mount/a/gone', null],
      ['mount/b/other', Buffer.from('not yours')],
    ]);
    const refusing = {
      transaction: () => Promise.reject(new StorageConflictError('mount/a/metadata/k', found)),
    } as unknown as Storage;
    const view = new StorageView(refusing, 'mount/').view('a/');
    const seen = (err: unknown) => {
      assert.ok(err instanceof StorageConflictError);
      assert.equal(err.key, 'metadata/k');
      assert.deepEqual(
        [...err.found()!].map(([key, value]) => [key, value && Buffer.from(value).toString()]),
        [
          ['metadata/k', 'v'],
          ['gone', null],
        ],
      );
      return true;
    };
    await assert.rejects(view.transaction([{ op: 'delete', key: 'x' }]), seen);
    const log = new StorageView(refusing, 'mount/').view('log/');
    await assert.rejects(view.transactionWith([], log, []), seen);
    // A view of a view (not flattened by view()) renames at each level.
    await assert.rejects(new StorageView(new StorageView(refusing, 'mount/'), 'a/').transaction([]), seen);
    await assert.rejects(
      new StorageView({ transaction: () => Promise.reject(new Error('down')) } as unknown as Storage, 'p/').transaction(
        [],
      ),
      /down/,
    );
  });
});
