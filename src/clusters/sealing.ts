import { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core';

/**
 * Sealed bundles: a delivery's payload sealed to one cluster's X25519 key with HPKE (RFC 9180, base mode,
 * DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM) through `@hpke/core`, never a construction of our own.
 *
 * What a bundle is for is bound twice: the HPKE `info` names the protocol version, and the AEAD's associated data
 * is the bundle's binding (cluster id, delivery, namespace, revision). A blob replayed to another cluster (wrong
 * key), another delivery or namespace, or presented as another revision fails to open; so does any changed byte.
 */

const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });
const INFO = new TextEncoder().encode('cofre bundle v1');

/** What a bundle is bound to. The opener supplies it from what it expects, never from the bundle alone. */
export interface BundleBinding {
  clusterId: string;
  delivery: string;
  namespace: string;
  revision: number;
}

export interface SealedBundle {
  /** The HPKE encapsulated key, base64url. */
  enc: string;
  /** The AEAD ciphertext of the payload, base64url. */
  ciphertext: string;
}

/** A cluster's sealing key pair; the private key never leaves the cluster that generated it. */
export interface SealingKeyPair {
  /** Raw 32-byte X25519 public key, base64url: what the cluster enrols. */
  publicKey: string;
  /** Raw 32-byte X25519 private key, base64url: what the agent keeps (in a Secret of its own namespace). */
  privateKey: string;
}

const b64 = (bytes: ArrayBuffer | Uint8Array): string => Buffer.from(bytes as ArrayBuffer).toString('base64url');
const unb64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64url'));

/** The associated data: a canonical encoding, so both sides compute the same bytes from the same binding. */
export function bindingBytes(binding: BundleBinding): Uint8Array {
  const { clusterId, delivery, namespace, revision } = binding;
  if (!Number.isSafeInteger(revision) || revision < 1) throw new Error('a bundle revision is a positive integer');
  return new TextEncoder().encode(JSON.stringify(['cofre-bundle', clusterId, delivery, namespace, revision]));
}

export async function generateSealingKeyPair(): Promise<SealingKeyPair> {
  const pair = await suite.kem.generateKeyPair();
  return {
    publicKey: b64(await suite.kem.serializePublicKey(pair.publicKey)),
    privateKey: b64(await suite.kem.serializePrivateKey(pair.privateKey)),
  };
}

/** Refuses anything that is not a raw X25519 public key, before it is stored as a cluster's key. */
export async function checkSealingPublicKey(publicKey: string): Promise<void> {
  const raw = unb64(publicKey);
  if (raw.length !== 32 || b64(raw) !== publicKey) throw new Error('a sealing key is 32 bytes of X25519, base64url');
  await suite.kem.deserializePublicKey(raw);
}

export async function sealBundle(
  publicKey: string,
  binding: BundleBinding,
  payload: Uint8Array,
): Promise<SealedBundle> {
  const recipientPublicKey = await suite.kem.deserializePublicKey(unb64(publicKey));
  const { ct, enc } = await suite.seal({ recipientPublicKey, info: INFO }, payload, bindingBytes(binding));
  return { enc: b64(enc), ciphertext: b64(ct) };
}

/** Opens a bundle sealed to this cluster; throws when the key, the binding or any byte is not what was sealed. */
export async function openBundle(
  privateKey: string,
  binding: BundleBinding,
  bundle: SealedBundle,
): Promise<Uint8Array> {
  const recipientKey = await suite.kem.deserializePrivateKey(unb64(privateKey));
  const plain = await suite.open(
    { recipientKey, enc: unb64(bundle.enc), info: INFO },
    unb64(bundle.ciphertext),
    bindingBytes(binding),
  );
  return new Uint8Array(plain);
}
