import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsonBytes, parseJson, parseJsonShared } from './storage-view.js';

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
