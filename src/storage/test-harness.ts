import { it } from 'node:test';
import assert from 'node:assert/strict';
import { StorageConflictError, type Storage, type StorageEntry } from '../core/storage.js';

/**
 * The storage port's contract, run by every adapter's tests against a real store. What an adapter does beyond the
 * port (group commit, file locking, notifications) is tested beside it.
 */
export interface StorageHarness {
  /** A new, empty store of its own. */
  open(): Promise<Storage>;
  /** Closes `s` and opens its data again. */
  reopen(s: Storage): Promise<Storage>;
  /** A store holding `seed` where writing `key` fails inside the database (a trigger), midway through a statement. */
  openFailingOn(key: string, seed: StorageEntry[]): Promise<Storage>;
}

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : Buffer.from(b).toString();

export function storageContract(h: StorageHarness): void {
  it('round-trips get/put/delete', async () => {
    const s = await h.open();
    assert.equal(await s.get('a'), undefined);
    const value = new Uint8Array([0, 1, 255, 0]);
    await s.put('a', value);
    const got = await s.get('a');
    assert.ok(got instanceof Uint8Array);
    assert.deepEqual(Buffer.from(got), Buffer.from(value));
    await s.put('empty', new Uint8Array(0));
    assert.equal((await s.get('empty'))?.length, 0);
    await s.delete('a');
    assert.equal(await s.get('a'), undefined);
    await s.delete('never-existed');
    await s.close();
  });

  it('overwrites, and copies values so later mutation of the caller buffer does not leak in', async () => {
    const s = await h.open();
    await s.put('k', bytes('one'));
    const buf = bytes('two');
    const p = s.put('k', buf);
    buf.fill(0x78);
    await p;
    assert.equal(text(await s.get('k')), 'two');

    const txBuf = bytes('three');
    const tx = s.transaction([{ op: 'put', key: 'k', value: txBuf }]);
    txBuf.fill(0x78);
    await tx;
    assert.equal(text(await s.get('k')), 'three');
    await s.close();
  });

  it('lists like Vault: direct children, relative, sorted, folders once', async () => {
    const s = await h.open();
    const keys = ['a/c', 'a/b/d', 'a/b/e/f', 'a/b0', 'a/b', 'a0', 'a.x', 'top', 'z/1', 'a/', 'a/b/g'];
    await Promise.all(keys.map((k) => s.put(k, bytes(k))));
    assert.deepEqual(await s.list('a/'), ['b', 'b/', 'b0', 'c']);
    assert.deepEqual(await s.list('a/b/'), ['d', 'e/', 'g']);
    assert.deepEqual(await s.list(''), ['a.x', 'a/', 'a0', 'top', 'z/']);
    assert.deepEqual(await s.list('a'), ['.x', '/', '0']);
    assert.deepEqual(await s.list('a/b/e/'), ['f']);
    assert.deepEqual(await s.list('nope/'), []);
    await s.close();
  });

  it('lists prefixes containing LIKE wildcards and high code points literally', async () => {
    const s = await h.open();
    const keys = [
      'a%b/x',
      'a%c',
      'a_b/y',
      'aXb/z',
      'a\\d',
      '\u{10FFFF}/1',
      '\u{10FFFF}\u{10FFFF}x',
      'x\uD7FFa',
      'x\uE000b',
      'y\uFFFF',
      'y\u{10000}',
    ];
    await Promise.all(keys.map((k) => s.put(k, bytes(k))));
    assert.deepEqual(await s.list('a%'), ['b/', 'c']);
    assert.deepEqual(await s.list('a_'), ['b/']);
    assert.deepEqual(await s.list('a\\'), ['d']);
    assert.deepEqual(await s.list('\u{10FFFF}'), ['/', '\u{10FFFF}x']);
    assert.deepEqual(await s.list('x\uD7FF'), ['a']);
    // Code point order (UTF-8 byte order), not JavaScript's UTF-16 order, which puts U+10000 before U+FFFF.
    assert.deepEqual(await s.list('y'), ['\uFFFF', '\u{10000}']);
    await s.close();
  });

  it('applies a transaction all-or-nothing, and its ops in order', async () => {
    const s = await h.openFailingOn('boom', [{ key: 'keep', value: bytes('old') }]);
    await assert.rejects(
      s.transaction([
        { op: 'delete', key: 'keep' },
        { op: 'put', key: 't1', value: bytes('1') },
        { op: 'put', key: 'boom', value: bytes('x') },
        { op: 'put', key: 't2', value: bytes('2') },
      ]),
      /boom/,
    );
    assert.equal(text(await s.get('keep')), 'old');
    assert.equal(await s.get('t1'), undefined);
    assert.equal(await s.get('t2'), undefined);
    await assert.rejects(s.put('boom', bytes('x')), /boom/);
    await s.put('after', bytes('1'));
    assert.equal(text(await s.get('after')), '1', 'the store still works after a failed write');

    await s.transaction([
      { op: 'put', key: 'x', value: bytes('x') },
      { op: 'delete', key: 'keep' },
      { op: 'put', key: 'x', value: bytes('y') },
      { op: 'put', key: 'gone', value: bytes('1') },
      { op: 'delete', key: 'gone' },
    ]);
    assert.equal(await s.get('keep'), undefined);
    assert.equal(text(await s.get('x')), 'y', 'ops apply in order');
    assert.equal(await s.get('gone'), undefined, 'a put then a delete of one key leaves nothing');
    await s.transaction([]);
    await s.close();
  });

  it('applies a transaction only if its checks hold, each caller of a group commit on its own', async () => {
    const s = await h.open();
    await s.put('meta', bytes('v1'));
    const conflict = (key: string) => (err: unknown) => err instanceof StorageConflictError && err.key === key;
    // Issued together, so that group-committing stores put all of them in one batch.
    const results = await Promise.allSettled([
      // Holds: applies.
      s.transaction([
        { op: 'check', key: 'meta', value: bytes('v1') },
        { op: 'put', key: 'meta', value: bytes('v2') },
        { op: 'put', key: 'data/2', value: bytes('two') },
      ]),
      // Checks what the caller before it replaced: rejected, nothing of it applied, not even its deletes.
      s.transaction([
        { op: 'check', key: 'meta', value: bytes('v1') },
        { op: 'put', key: 'meta', value: bytes('lost') },
        { op: 'put', key: 'data/other', value: bytes('lost') },
        { op: 'delete', key: 'data/2' },
      ]),
      // Expects no entry where there is one.
      s.transaction([
        { op: 'check', key: 'meta', value: null },
        { op: 'put', key: 'fresh', value: bytes('lost') },
      ]),
      // Expects no entry, and there is none: applies; the check wrote nothing.
      s.transaction([
        { op: 'check', key: 'absent', value: null },
        { op: 'put', key: 'fresh2', value: bytes('1') },
      ]),
      s.put('unrelated', bytes('1')),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'rejected', 'fulfilled', 'fulfilled'],
    );
    assert.ok(conflict('meta')((results[1] as PromiseRejectedResult).reason));
    assert.ok(conflict('meta')((results[2] as PromiseRejectedResult).reason));
    assert.equal(text(await s.get('meta')), 'v2');
    assert.equal(text(await s.get('data/2')), 'two');
    assert.equal(await s.get('data/other'), undefined);
    assert.equal(await s.get('fresh'), undefined);
    assert.equal(await s.get('absent'), undefined);
    assert.equal(text(await s.get('fresh2')), '1');
    assert.equal(text(await s.get('unrelated')), '1');
    // By prefix, as the barrier checks: the value held begins with these bytes.
    await s.transaction([
      { op: 'check', key: 'meta', prefix: bytes('v') },
      { op: 'put', key: 'meta', value: bytes('v3') },
    ]);
    await assert.rejects(s.transaction([{ op: 'check', key: 'meta', prefix: bytes('v2') }]), conflict('meta'));
    await assert.rejects(s.transaction([{ op: 'check', key: 'meta', prefix: bytes('v33') }]), conflict('meta'));
    await assert.rejects(s.transaction([{ op: 'check', key: 'absent', prefix: bytes('') }]), conflict('absent'));
    assert.equal(text(await s.get('meta')), 'v3');
    // A check of a key that was deleted fails; of one whose value differs in a single byte too.
    await assert.rejects(s.transaction([{ op: 'check', key: 'gone', value: bytes('x') }]), conflict('gone'));
    await assert.rejects(s.transaction([{ op: 'check', key: 'meta', value: bytes('v4') }]), conflict('meta'));
    await s.close();
  });

  it('rejects bad input without affecting other writers', async () => {
    const s = await h.open();
    const bad = s.put('k', 'not bytes' as unknown as Uint8Array);
    const badOp = s.transaction([
      { op: 'put', key: 'k2', value: bytes('1') },
      { op: 'nope', key: 'k3' } as unknown as { op: 'delete'; key: string },
    ]);
    const good = s.put('ok', bytes('1'));
    await assert.rejects(bad, TypeError);
    await assert.rejects(badOp, TypeError);
    await good;
    assert.equal(await s.get('k'), undefined);
    assert.equal(await s.get('k2'), undefined);
    assert.equal(text(await s.get('ok')), '1');
    await s.close();
  });

  it('reads see every resolved write, concurrent writes included', async () => {
    const s = await h.open();
    await Promise.all(Array.from({ length: 100 }, (_, i) => s.put(`k/${i}`, bytes(String(i)))));
    assert.equal((await s.list('k/')).length, 100);
    assert.equal(text(await s.get('k/99')), '99');
    await s.close();
  });

  it('appends to a log in commit order: consecutive positions, the keys told to each caller, none to a refused one', async () => {
    const s = await h.open();
    await s.put('log/0000000000000007', bytes('older'));
    await s.put('log0', bytes('beside the log'));
    await s.put('gate', bytes('open'));
    const log = (value: string) => ({ op: 'append' as const, key: 'log/', value: bytes(value) });
    const first = await s.transaction([log('a'), { op: 'put', key: 'with-a', value: bytes('1') }, log('b')]);
    assert.deepEqual(first, ['log/0000000000000008', 'log/0000000000000009'], 'after the last, in op order');
    // Many callers in one group commit, one of them refused by its check: it takes no position.
    const callers = Array.from({ length: 40 }, (_, i) =>
      s.transaction([...(i === 13 ? [{ op: 'check' as const, key: 'gate', value: bytes('shut') }] : []), log(`c${i}`)]),
    );
    const outcomes = await Promise.allSettled(callers);
    const refused = outcomes[13]!;
    assert.ok(refused.status === 'rejected' && refused.reason instanceof StorageConflictError);
    const given = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [...(o.value ?? [])] : []));
    const expected = Array.from({ length: 39 }, (_, i) => `log/${String(10 + i).padStart(16, '0')}`);
    assert.deepEqual([...given].sort(), expected, 'no position twice, none skipped');
    for (const [i, o] of outcomes.entries()) {
      if (o.status === 'fulfilled') assert.equal(text(await s.get(String(o.value?.[0]))), `c${i}`);
    }
    assert.equal((await s.list('log/')).length, 42);
    // Trimmed at the front, the log goes on after its last entry.
    await s.delete('log/0000000000000007');
    assert.deepEqual(await s.transaction([log('d')]), ['log/0000000000000049']);
    // Each log numbers its own entries.
    const two = await s.transaction([{ op: 'append', key: 'other/', value: bytes('o') }, log('e')]);
    assert.deepEqual(two, ['other/0000000000000001', 'log/0000000000000050']);
    assert.equal(text(await s.get('log0')), 'beside the log');
    await s.close();
  });

  it('writes, checks, deletes and appends under keys made of quoting and array syntax', async () => {
    const s = await h.open();
    // What an adapter may write into a statement's text or an array literal: quotes, backslashes, braces, commas,
    // spaces, the word NULL, JSON.
    const odd = ['a"b', 'a\\b', '{c}', 'd,e', ' f ', 'NULL', 'null', '"', '\\', '{"k":"v"}', 'g\\"h', "i'j"];
    await s.transaction(odd.map((key) => ({ op: 'put' as const, key, value: bytes(`v:${key}`) })));
    for (const key of odd) assert.equal(text(await s.get(key)), `v:${key}`, key);
    const read = await Promise.all(odd.map((key) => s.get(key)));
    assert.deepEqual(
      read.map(text),
      odd.map((key) => `v:${key}`),
      'read together',
    );
    await s.transaction([
      ...odd.map((key) => ({ op: 'check' as const, key, value: bytes(`v:${key}`) })),
      { op: 'delete', key: 'NULL' },
      { op: 'put', key: 'a"b', value: bytes('changed') },
    ]);
    assert.equal(await s.get('NULL'), undefined);
    assert.equal(text(await s.get('null')), 'v:null', 'a key named null is not the key NULL');
    assert.equal(text(await s.get('a"b')), 'changed');
    await assert.rejects(s.transaction([{ op: 'check', key: 'd,e', value: bytes('v:d') }]), StorageConflictError);
    const logged = await s.transaction([{ op: 'append', key: 'l"{,}\\/', value: bytes('entry') }]);
    assert.deepEqual(logged, ['l"{,}\\/0000000000000001']);
    assert.equal(text(await s.get(String(logged?.[0]))), 'entry');
    await s.close();
  });

  it('persists across reopen', async () => {
    const s = await h.open();
    await s.put('a/b', bytes('1'));
    await s.transaction([{ op: 'put', key: 'c', value: bytes('2') }]);
    const again = await h.reopen(s);
    assert.equal(text(await again.get('a/b')), '1');
    assert.deepEqual(await again.list(''), ['a/', 'c']);
    await again.close();
  });

  it('close waits for writes under way, then rejects further operations', async () => {
    const s = await h.open();
    const pending = s.put('pending', bytes('1'));
    const pendingTx = s.transaction([{ op: 'delete', key: 'nothing' }]);
    await s.close();
    await pending;
    await pendingTx;
    await s.close(); // idempotent
    await assert.rejects(s.get('pending'), /closed/);
    await assert.rejects(s.put('x', bytes('1')), /closed/);
    await assert.rejects(s.delete('x'), /closed/);
    await assert.rejects(s.list(''), /closed/);
    await assert.rejects(s.transaction([]), /closed/);
    const again = await h.reopen(s);
    assert.equal(text(await again.get('pending')), '1');
    await again.close();
  });
}
