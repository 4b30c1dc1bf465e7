import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { describe, it } from 'node:test';
import { CofreError } from '../core/errors.js';
import { checkFreshness, checkSigningPublicKey, loginMessage, NonceCache, signatureValid } from './agent-identity.js';

function keyPair(): { x: string; sign: (m: Buffer) => string } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const x = (publicKey.export({ format: 'jwk' }) as { x: string }).x;
  return { x, sign: (m) => sign(null, m, privateKey).toString('base64url') };
}

function proof(id: string, signer: (m: Buffer) => string, at = new Date()) {
  const timestamp = at.toISOString();
  const nonce = randomBytes(16).toString('base64url');
  return { cluster_id: id, timestamp, nonce, signature: signer(loginMessage(id, timestamp, nonce)) };
}

describe('agent identity', () => {
  const id = '0b0e8a57-7b1c-4c8e-9a63-3f7c1b2d4e5f';

  it('verifies an Ed25519 signature over exactly the login message', () => {
    const key = keyPair();
    const p = proof(id, key.sign);
    assert.equal(signatureValid(key.x, p), true);
    assert.equal(signatureValid(keyPair().x, p), false);
    assert.equal(signatureValid(key.x, { ...p, cluster_id: id.replace('0b', '1b') }), false);
    assert.equal(signatureValid(key.x, { ...p, nonce: randomBytes(16).toString('base64url') }), false);
    assert.equal(signatureValid(key.x, { ...p, signature: 'short' }), false);
  });

  it('refuses stale, future and malformed proofs before any key is looked at', () => {
    const key = keyPair();
    checkFreshness(proof(id, key.sign));
    const status = (fn: () => void) => {
      try {
        fn();
        return 0;
      } catch (err) {
        return (err as CofreError).status;
      }
    };
    assert.equal(
      status(() => checkFreshness(proof(id, key.sign, new Date(Date.now() - 61_000)))),
      403,
    );
    assert.equal(
      status(() => checkFreshness(proof(id, key.sign, new Date(Date.now() + 61_000)))),
      403,
    );
    assert.equal(
      status(() => checkFreshness({ ...proof(id, key.sign), timestamp: '2026-01-01' })),
      400,
    );
    assert.equal(
      status(() => checkFreshness({ ...proof(id, key.sign), nonce: 'AAAA' })),
      400,
    );
  });

  it('accepts only raw 32-byte Ed25519 public keys', () => {
    checkSigningPublicKey(keyPair().x);
    assert.throws(() => checkSigningPublicKey(randomBytes(31).toString('base64url')), /32-byte/);
    assert.throws(() => checkSigningPublicKey(randomBytes(32).toString('base64') + '!'), /32-byte/);
  });

  it('a nonce is accepted once per cluster within the window', () => {
    const cache = new NonceCache();
    const now = Date.now();
    assert.equal(cache.claim(id, 'n1', now, now), true);
    assert.equal(cache.claim(id, 'n1', now, now), false);
    assert.equal(cache.claim('other', 'n1', now, now), true);
  });

  it("one cluster's logins cannot fill the cache the others share: it is refused alone, and not for long", () => {
    const cache = new NonceCache();
    const now = Date.now();
    for (let i = 0; i < 1000; i++) assert.equal(cache.claim('flooder', `n${i}`, now, now), true);
    assert.throws(() => cache.claim('flooder', 'one-more', now, now), /too many logins of this cluster/);
    assert.equal(cache.claim(id, 'n1', now, now), true);
    // Once its nonces leave the window, it logs in again.
    const later = now + 61_000;
    assert.equal(cache.claim('flooder', 'after', later, later), true);
  });
});
