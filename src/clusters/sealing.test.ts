import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  checkSealingPublicKey,
  generateSealingKeyPair,
  openBundle,
  sealBundle,
  type BundleBinding,
  type SealedBundle,
} from './sealing.js';

const payload = new TextEncoder().encode(
  JSON.stringify({ objects: [{ kind: 'Secret', data: { password: 'cGFzcw' } }] }),
);
const binding: BundleBinding = { clusterId: 'c-a', delivery: 'shop', namespace: 'store', revision: 3 };

/** Flips one bit of a base64url field. */
function tamper(text: string, at: number): string {
  const bytes = Buffer.from(text, 'base64url');
  bytes[at % bytes.length]! ^= 1;
  return bytes.toString('base64url');
}

describe('sealed bundles (HPKE, RFC 9180)', () => {
  it('open with the cluster’s key and the same binding gives back the payload', async () => {
    const a = await generateSealingKeyPair();
    const bundle = await sealBundle(a.publicKey, binding, payload);
    assert.deepEqual(await openBundle(a.privateKey, binding, bundle), payload);
    assert.ok(
      !Buffer.from(bundle.ciphertext, 'base64url').includes(Buffer.from('cGFzcw')),
      'the payload is not in clear',
    );
  });

  it('a blob sealed to cluster A does not open with cluster B’s key, even under A’s binding', async () => {
    const [a, b] = [await generateSealingKeyPair(), await generateSealingKeyPair()];
    const bundle = await sealBundle(a.publicKey, binding, payload);
    await assert.rejects(openBundle(b.privateKey, binding, bundle));
  });

  it('a blob presented for another cluster id, delivery, namespace or revision does not open', async () => {
    const a = await generateSealingKeyPair();
    const bundle = await sealBundle(a.publicKey, binding, payload);
    for (const other of [
      { ...binding, clusterId: 'c-b' },
      { ...binding, delivery: 'shop2' },
      { ...binding, namespace: 'other' },
      { ...binding, revision: 4 },
      { ...binding, revision: 2 },
    ]) {
      await assert.rejects(openBundle(a.privateKey, other, bundle), Error, JSON.stringify(other));
    }
  });

  it('any changed byte of the encapsulated key or the ciphertext is refused', async () => {
    const a = await generateSealingKeyPair();
    const bundle = await sealBundle(a.publicKey, binding, payload);
    for (let at = 0; at < 48; at += 7) {
      const changed: SealedBundle[] = [
        { ...bundle, enc: tamper(bundle.enc, at) },
        { ...bundle, ciphertext: tamper(bundle.ciphertext, at) },
      ];
      for (const c of changed) await assert.rejects(openBundle(a.privateKey, binding, c));
    }
    await assert.rejects(openBundle(a.privateKey, binding, { ...bundle, ciphertext: bundle.ciphertext.slice(0, -4) }));
  });

  it('two seals of one payload differ (a fresh ephemeral key each time)', async () => {
    const a = await generateSealingKeyPair();
    const [x, y] = [await sealBundle(a.publicKey, binding, payload), await sealBundle(a.publicKey, binding, payload)];
    assert.notEqual(x.enc, y.enc);
    assert.notEqual(x.ciphertext, y.ciphertext);
  });

  it('only a raw 32-byte X25519 key in canonical base64url is accepted as a sealing key', async () => {
    const a = await generateSealingKeyPair();
    await checkSealingPublicKey(a.publicKey);
    for (const bad of ['', 'AAAA', `${a.publicKey}A`, a.publicKey.slice(1), `${a.publicKey}==`]) {
      await assert.rejects(checkSealingPublicKey(bad), Error, bad);
    }
    await assert.rejects(sealBundle(a.publicKey, { ...binding, revision: 0 }, payload), /positive integer/);
  });
});
