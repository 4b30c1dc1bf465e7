import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import type { StorageOp } from '../core/storage.js';
import { CallEncoder, decodeCalls } from './commit-batch.js';

const plain = (calls: StorageOp[][]): unknown =>
  calls.map((ops) =>
    ops.map((op) => {
      if (op.op === 'delete') return op;
      if (op.op === 'put') return { ...op, value: Buffer.from(op.value).toString('hex') };
      if ('prefix' in op) return { ...op, prefix: Buffer.from(op.prefix).toString('hex') };
      return { ...op, value: op.value === null ? null : Buffer.from(op.value).toString('hex') };
    }),
  );

describe('the commit thread batch encoding', () => {
  it('gives back every kind of op, in order and per caller, with keys in any script and empty values', () => {
    const calls: StorageOp[][] = [
      [
        { op: 'check', key: 'logical/kv/metadata/a', value: Buffer.from('meta') },
        { op: 'put', key: 'logical/kv/versions/a/2', value: Buffer.from([0, 1, 2, 255]) },
        { op: 'delete', key: 'logical/kv/versions/a/1' },
      ],
      [],
      [
        { op: 'check', key: 'clé/秘密/🔑', value: null },
        // Not well-formed Unicode (a lone surrogate): kept exactly, as a structured clone would keep it.
        { op: 'delete', key: 'half/\uD800/pair' },
        { op: 'check', key: 'x', prefix: new Uint8Array([9, 8, 7]) },
        { op: 'put', key: '', value: new Uint8Array(0) },
      ],
    ];
    const encoder = new CallEncoder();
    for (const ops of calls) encoder.add(ops);
    assert.deepEqual(plain(decodeCalls(encoder.take())), plain(calls));
    const next = encoder.take();
    assert.deepEqual([next.calls, next.bytes.byteLength], [0, 0], 'a take leaves the encoder empty');
  });

  it('copies values when they are added, so a caller may reuse its buffer before the flush', () => {
    const value = Buffer.from('first');
    const encoder = new CallEncoder();
    encoder.add([{ op: 'put', key: 'k', value }]);
    value.write('XXXXX');
    const [[op]] = decodeCalls(encoder.take()) as [[StorageOp]];
    assert.equal(op.op === 'put' && Buffer.from(op.value).toString(), 'first');
  });

  it('refuses a malformed op and keeps nothing of its call, the calls around it intact', () => {
    const encoder = new CallEncoder();
    encoder.add([{ op: 'put', key: 'before', value: Buffer.from('1') }]);
    const bad = [
      { op: 'put', key: 'half', value: Buffer.from('2') },
      { op: 'put', key: 'bad', value: 'not bytes' },
    ] as unknown as StorageOp[];
    assert.throws(() => encoder.add(bad), /storage value must be a Uint8Array/);
    assert.throws(
      () => encoder.add([{ op: 'rename', key: 'k' } as unknown as StorageOp]),
      /must be put, delete, append or check/,
    );
    assert.throws(() => encoder.add([{ op: 'delete', key: 7 } as unknown as StorageOp]), /key must be a string/);
    // A check without its bytes would shift every op after it: refused, alone.
    const checks = [
      { op: 'check', key: 'c', value: undefined },
      { op: 'check', key: 'c', prefix: undefined },
      { op: 'check', key: 'c', value: new Uint16Array([1]) },
    ] as unknown as StorageOp[];
    for (const check of checks) assert.throws(() => encoder.add([check]), /check (value|prefix) must be a Uint8Array/);
    encoder.add([{ op: 'delete', key: 'after' }]);
    assert.deepEqual(plain(decodeCalls(encoder.take())), [
      [{ op: 'put', key: 'before', value: Buffer.from('1').toString('hex') }],
      [{ op: 'delete', key: 'after' }],
    ]);
  });

  it('grows past its scratch buffer, and each batch owns an exact-size buffer that can be transferred', () => {
    const encoder = new CallEncoder();
    const big = Buffer.alloc(300 * 1024, 7);
    encoder.add([{ op: 'put', key: 'big', value: big }]);
    encoder.add([{ op: 'put', key: 'small', value: Buffer.from('s') }]);
    const encoded = encoder.take();
    assert.equal(encoded.bytes.byteOffset, 0);
    assert.equal(encoded.bytes.buffer.byteLength, encoded.bytes.byteLength);

    const { port1, port2 } = new MessageChannel();
    port1.postMessage(encoded, [encoded.bytes.buffer]);
    assert.equal(encoded.bytes.byteLength, 0, 'the sender no longer holds the bytes');
    const received = receiveMessageOnPort(port2)!.message as typeof encoded;
    port1.close();
    const [[first], [second]] = decodeCalls(received) as [[StorageOp], [StorageOp]];
    assert.ok(first.op === 'put' && Buffer.from(first.value).equals(big));
    assert.ok(second.op === 'put' && Buffer.from(second.value).toString() === 's');

    // The scratch buffer grew and is reused: the next batch is encoded as well.
    encoder.add([{ op: 'delete', key: 'next' }]);
    assert.deepEqual(decodeCalls(encoder.take()), [[{ op: 'delete', key: 'next' }]]);
  });

  it('refuses a batch cut short, with bytes left over, or with an unknown tag, instead of committing part of it', () => {
    const encoder = new CallEncoder();
    encoder.add([{ op: 'put', key: 'k', value: Buffer.from('value') }]);
    const { calls, bytes } = encoder.take();
    assert.throws(() => decodeCalls({ calls, bytes: bytes.slice(0, bytes.length - 2) }), /cut short|out of range/);
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    assert.throws(() => decodeCalls({ calls, bytes: longer }), /left over/);
    const tagged = bytes.slice();
    tagged[4] = 42;
    assert.throws(() => decodeCalls({ calls, bytes: tagged }), /unknown op tag 42/);
  });
});
