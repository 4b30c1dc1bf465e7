import { createSecretKey, type KeyObject } from 'node:crypto';
import { newKey } from './aead.js';

/** One data-encryption key of the barrier. Terms only grow; old terms stay so old entries still decrypt. */
export interface TermKey {
  term: number;
  key: Buffer;
  /** The key imported once, for the cipher (a raw key is imported again by every encryption). */
  cipherKey: KeyObject;
  installTime: Date;
}

const termKey = (term: number, key: Buffer, installTime: Date): TermKey => ({
  term,
  key,
  cipherKey: createSecretKey(key),
  installTime,
});

/**
 * The barrier's keys. The active term encrypts new writes; every term decrypts. The keyring itself is stored
 * encrypted by the root key, which the seal protects.
 */
export class Keyring {
  private constructor(
    private readonly keys: Map<number, TermKey>,
    readonly activeTerm: number,
  ) {}

  static create(): Keyring {
    return new Keyring(new Map([[1, termKey(1, newKey(), new Date())]]), 1);
  }

  active(): TermKey {
    return this.keys.get(this.activeTerm)!;
  }

  term(term: number): TermKey | undefined {
    return this.keys.get(term);
  }

  /** A new keyring with one more term, active; the caller persists it before using it. */
  rotate(): Keyring {
    const term = this.activeTerm + 1;
    const keys = new Map(this.keys);
    keys.set(term, termKey(term, newKey(), new Date()));
    return new Keyring(keys, term);
  }

  serialize(): Buffer {
    const keys = [...this.keys.values()].map((k) => ({
      term: k.term,
      key: k.key.toString('base64'),
      install_time: k.installTime.toISOString(),
    }));
    return Buffer.from(JSON.stringify({ active_term: this.activeTerm, keys }));
  }

  static deserialize(bytes: Uint8Array): Keyring {
    const parsed = JSON.parse(Buffer.from(bytes).toString('utf8')) as {
      active_term: number;
      keys: { term: number; key: string; install_time: string }[];
    };
    const keys = new Map<number, TermKey>();
    for (const k of parsed.keys) {
      keys.set(k.term, termKey(k.term, Buffer.from(k.key, 'base64'), new Date(k.install_time)));
    }
    if (!keys.has(parsed.active_term)) throw new Error('keyring has no key for its active term');
    return new Keyring(keys, parsed.active_term);
  }
}
