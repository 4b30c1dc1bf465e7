import assert from 'node:assert/strict';
import { createSecretKey } from 'node:crypto';
import { describe, it } from 'node:test';
import { newKey, open, seal, sealAfter } from './aead.js';

describe('aead (AES-256-GCM)', () => {
  it('opens what it sealed, with a raw key or its key object alike, and refuses another context', () => {
    const key = newKey();
    const sealed = seal(key, Buffer.from('value'), Buffer.from('path/a'));
    assert.equal(open(createSecretKey(key), sealed, Buffer.from('path/a')).toString(), 'value');
    assert.throws(() => open(key, sealed, Buffer.from('path/b')));
    assert.throws(() => open(newKey(), sealed, Buffer.from('path/a')));
  });

  it('gives every seal a nonce of its own, across many refills of the nonce pool', () => {
    const key = createSecretKey(newKey());
    const nonces = new Set<string>();
    const count = 5000; // the pool holds a few hundred nonces
    for (let i = 0; i < count; i++) {
      const nonce = seal(key, Buffer.from('v'), Buffer.alloc(0)).subarray(0, 12);
      assert.notDeepEqual(nonce, Buffer.alloc(12), 'an all-zero nonce: a pool slot was taken twice');
      nonces.add(nonce.toString('hex'));
    }
    assert.equal(nonces.size, count);
  });

  it('sealAfter puts the header first, then what seal makes; empty and large values alike', () => {
    const key = createSecretKey(newKey());
    const header = Buffer.from([1, 0, 0, 0, 7]);
    for (const plain of [Buffer.alloc(0), Buffer.from('v'), Buffer.alloc(100_000, 0x5a)]) {
      const out = sealAfter(header, key, plain, Buffer.from('path/a'));
      assert.equal(out.length, header.length + 12 + plain.length + 16);
      assert.deepEqual(out.subarray(0, header.length), header);
      assert.notDeepEqual(out.subarray(header.length, header.length + 12), Buffer.alloc(12));
      assert.deepEqual(open(key, out.subarray(header.length), Buffer.from('path/a')), plain);
      assert.throws(() => open(key, out.subarray(header.length), Buffer.from('path/b')));
    }
  });
});
