// The cluster agent's two key pairs (docs/multi-cluster.md, "The agent"): X25519 to open the bundles sealed to this
// cluster, Ed25519 to prove possession when it logs in. They are generated inside the cluster on the agent's first
// start and their private halves kept in one Secret of the agent's own namespace; later starts (and other
// replicas) load them from there. The Secret is created with create-only semantics, so two replicas racing on a
// first start cannot end with different keys: the loser of the create reads the winner's Secret.
//
// The private halves stay inside AgentKeys: nothing outside this file reads them, and neither JSON.stringify nor
// util.inspect (what a log line would use) shows them.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import { CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { generateSealingKeyPair, openBundle, type BundleBinding, type SealedBundle } from '../../clusters/sealing.js';
import { kubeCode, kubeMessage } from '../operator/errors.js';

export const KEYS_SECRET = 'cofre-cluster-agent-keys';
const SEALING_KEY = 'sealing-private-key';
const SIGNING_KEY = 'signing-private-key';

// PKCS#8 DER prefixes of a raw 32-byte private key (RFC 8410): how node:crypto takes a raw X25519/Ed25519 key.
const PKCS8_PREFIX = {
  x25519: Buffer.from('302e020100300506032b656e04220420', 'hex'),
  ed25519: Buffer.from('302e020100300506032b657004220420', 'hex'),
};

/** A stored key that cannot be used; its message names the Secret and the key, never the key's bytes. */
export class AgentKeysError extends Error {
  override name = 'AgentKeysError';
}

function privateKeyFromRaw(kind: 'x25519' | 'ed25519', raw: string, what: string): KeyObject {
  const bytes = Buffer.from(raw, 'base64url');
  if (bytes.length !== 32 || bytes.toString('base64url') !== raw)
    throw new AgentKeysError(`${what} in Secret ${KEYS_SECRET} is not 32 bytes of base64url`);
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX[kind], bytes]), format: 'der', type: 'pkcs8' });
}

/** The raw public key (base64url, the JWK `x` of RFC 8037) of a private key. */
function rawPublicKey(privateKey: KeyObject): string {
  return createPublicKey(privateKey).export({ format: 'jwk' }).x!;
}

export class AgentKeys {
  /** Raw X25519 public key, base64url: the `sealing_key` the agent enrols. */
  readonly sealingPublicKey: string;
  /** Raw Ed25519 public key, base64url: the `signing_key` the agent enrols. */
  readonly signingPublicKey: string;
  readonly #sealingPrivateKey: string;
  readonly #signingKey: KeyObject;

  /** From the raw private halves (base64url); the public halves are derived, so the two can never disagree. */
  constructor(sealingPrivateKey: string, signingPrivateKey: string) {
    this.sealingPublicKey = rawPublicKey(privateKeyFromRaw('x25519', sealingPrivateKey, SEALING_KEY));
    this.#sealingPrivateKey = sealingPrivateKey;
    this.#signingKey = privateKeyFromRaw('ed25519', signingPrivateKey, SIGNING_KEY);
    this.signingPublicKey = rawPublicKey(this.#signingKey);
  }

  static async generate(): Promise<AgentKeys> {
    const sealing = await generateSealingKeyPair();
    const { privateKey } = generateKeyPairSync('ed25519');
    return new AgentKeys(sealing.privateKey, privateKey.export({ format: 'jwk' }).d!);
  }

  /** Opens a bundle sealed to this cluster under the binding the agent expects (see openBundle). */
  open(binding: BundleBinding, bundle: SealedBundle): Promise<Uint8Array> {
    return openBundle(this.#sealingPrivateKey, binding, bundle);
  }

  /** The Ed25519 signature (base64url) of `message`: the login's proof of possession. */
  sign(message: string | Uint8Array): string {
    const bytes = typeof message === 'string' ? Buffer.from(message, 'utf8') : message;
    return sign(null, bytes, this.#signingKey).toString('base64url');
  }

  /** SHA-256 (hex) of each raw public key: what the server shows for a cluster, to compare by eye. */
  fingerprints(): { sealing: string; signing: string } {
    const fp = (k: string) => createHash('sha256').update(Buffer.from(k, 'base64url')).digest('hex');
    return { sealing: fp(this.sealingPublicKey), signing: fp(this.signingPublicKey) };
  }

  /** The Secret's data (base64, as the API wants it) holding the private halves. */
  secretData(): Record<string, string> {
    const b64 = (raw: string) => Buffer.from(raw, 'base64url').toString('base64');
    return {
      [SEALING_KEY]: b64(this.#sealingPrivateKey),
      [SIGNING_KEY]: b64(this.#signingKey.export({ format: 'jwk' }).d!),
    };
  }

  static fromSecret(secret: V1Secret): AgentKeys {
    const data = secret.data ?? {};
    const raw = (key: string) => {
      const v = data[key];
      if (!v) throw new AgentKeysError(`Secret ${KEYS_SECRET} has no ${key}`);
      return Buffer.from(v, 'base64').toString('base64url');
    };
    return new AgentKeys(raw(SEALING_KEY), raw(SIGNING_KEY));
  }

  toJSON(): object {
    return { sealingPublicKey: this.sealingPublicKey, signingPublicKey: this.signingPublicKey };
  }

  [inspect.custom](): string {
    return `AgentKeys ${JSON.stringify(this.toJSON())}`;
  }
}

export interface LoadedKeys {
  keys: AgentKeys;
  /** True when this call generated the keys (first start); false when it read keys that were already there. */
  created: boolean;
}

/**
 * The agent's keys from the Secret `cofre-cluster-agent-keys` of `namespace`, generated and stored on first start.
 * The Secret is immutable (a key never changes in place; re-enrolling with new keys means deleting it) and is
 * created, never updated: when another replica created it first, the create fails with 409 and we read theirs.
 */
export async function loadOrCreateAgentKeys(kc: KubeConfig, namespace: string): Promise<LoadedKeys> {
  const core = kc.makeApiClient(CoreV1Api);
  const read = async (): Promise<AgentKeys | undefined> => {
    try {
      return AgentKeys.fromSecret(await core.readNamespacedSecret({ name: KEYS_SECRET, namespace }));
    } catch (err) {
      if (err instanceof AgentKeysError) throw err;
      if (kubeCode(err) === 404) return undefined;
      throw new AgentKeysError(`reading Secret ${namespace}/${KEYS_SECRET}: ${kubeMessage(err)}`);
    }
  };
  const existing = await read();
  if (existing) return { keys: existing, created: false };
  const keys = await AgentKeys.generate();
  try {
    await core.createNamespacedSecret({
      namespace,
      body: {
        metadata: {
          name: KEYS_SECRET,
          labels: { 'app.kubernetes.io/name': 'cofre-cluster-agent', 'app.kubernetes.io/component': 'keys' },
        },
        type: 'Opaque',
        immutable: true,
        data: keys.secretData(),
      },
    });
    return { keys, created: true };
  } catch (err) {
    if (kubeCode(err) !== 409)
      throw new AgentKeysError(`creating Secret ${namespace}/${KEYS_SECRET}: ${kubeMessage(err)}`);
  }
  // Another replica won the race: its keys are the cluster's keys.
  const winner = await read();
  if (!winner) throw new AgentKeysError(`Secret ${namespace}/${KEYS_SECRET} was created and then deleted; try again`);
  return { keys: winner, created: false };
}
