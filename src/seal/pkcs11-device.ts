import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { endianness } from 'node:os';
import type * as Pkcs11Module from 'pkcs11js';
import { CofreError } from '../core/errors.js';

/**
 * One logged-in session with an HSM through its PKCS#11 library (pkcs11js), holding the handle of one AES key
 * that encrypts and decrypts with CKM_AES_GCM inside the device. The key never leaves it: it is found (or made)
 * non-extractable and sensitive, and a found key that is extractable is refused.
 */

export interface Pkcs11DeviceConfig {
  lib: string;
  /** The slot ID (as the library numbers it); or the token's label. One of the two. */
  slot?: number;
  tokenLabel?: string;
  pin: string;
  keyLabel: string;
  /** Creates the key when no key has the label. */
  generateKey: boolean;
}

/**
 * What went wrong, naming the library, slot, token, key label and PKCS#11 return code, never the PIN (which no
 * message here is built from, and pkcs11js's own messages are only the return code's name). A CofreError, so an
 * operator who unseals while the HSM fails reads why in the answer instead of a bare internal error.
 */
export class Pkcs11SealError extends CofreError {
  constructor(message: string) {
    super(500, message);
    this.name = 'Pkcs11SealError';
  }
}

type Pkcs11 = typeof Pkcs11Module;
let loaded: Pkcs11 | undefined;

/** Loaded when a PKCS#11 seal is configured, so a server without one never loads the native addon. */
function pkcs11js(): Pkcs11 {
  loaded ??= createRequire(import.meta.url)('pkcs11js') as Pkcs11;
  return loaded;
}

const GCM_IV_BYTES = 12;
const GCM_TAG_BITS = 128;

/** The return code as PKCS#11 names it, and in hex: "CKR_PIN_INCORRECT (0xa0)". */
function returnCode(p: Pkcs11, err: unknown): string {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'number') return (err as Error).message?.split('\n')[0] ?? String(err);
  const name = Object.keys(p).find(
    (k) => k.startsWith('CKR_') && (p as unknown as Record<string, unknown>)[k] === code,
  );
  return `${name ?? 'CKR_?'} (0x${code.toString(16)})`;
}

function slotNumber(handle: Buffer): bigint {
  if (handle.length === 8) return endianness() === 'LE' ? handle.readBigUInt64LE() : handle.readBigUInt64BE();
  return BigInt(endianness() === 'LE' ? handle.readUInt32LE() : handle.readUInt32BE());
}

export class Pkcs11Device {
  private constructor(
    private readonly p: Pkcs11,
    private readonly module: Pkcs11Module.PKCS11,
    private readonly session: Buffer,
    private readonly key: Buffer,
    /** "library L, slot S (token "T")": where every message says it happened. */
    readonly where: string,
    readonly keyLabel: string,
  ) {}

  static open(config: Pkcs11DeviceConfig): Pkcs11Device {
    let p: Pkcs11;
    try {
      p = pkcs11js();
    } catch (err) {
      throw new Pkcs11SealError(`PKCS#11 seal: the pkcs11js binding cannot be loaded: ${(err as Error).message}`);
    }
    const module = new p.PKCS11();
    let where = `library ${config.lib}`;
    const fail = (step: string, err: unknown): Pkcs11SealError =>
      new Pkcs11SealError(`PKCS#11 seal: ${step} failed on ${where}: ${returnCode(p, err)}`);
    try {
      module.load(config.lib);
    } catch (err) {
      throw new Pkcs11SealError(`PKCS#11 seal: cannot load ${where}: ${(err as Error).message.split('\n')[0]}`);
    }
    let opened = false;
    try {
      module.C_Initialize();
      opened = true;
    } catch (err) {
      // Already initialised by this process (a second seal object): that is fine.
      if ((err as { code?: number }).code !== p.CKR_CRYPTOKI_ALREADY_INITIALIZED) throw fail('C_Initialize', err);
    }
    try {
      const slot = Pkcs11Device.findSlot(p, module, config, where);
      const label = module.C_GetTokenInfo(slot).label.trim();
      where = `library ${config.lib}, slot ${slotNumber(slot)} (token "${label}")`;
      let session: Buffer;
      try {
        session = module.C_OpenSession(slot, p.CKF_RW_SESSION | p.CKF_SERIAL_SESSION);
      } catch (err) {
        throw fail('C_OpenSession', err);
      }
      try {
        module.C_Login(session, p.CKU_USER, config.pin);
      } catch (err) {
        if ((err as { code?: number }).code !== p.CKR_USER_ALREADY_LOGGED_IN) throw fail('C_Login', err);
      }
      const key = Pkcs11Device.findKey(p, module, session, config, where);
      return new Pkcs11Device(p, module, session, key, where, config.keyLabel);
    } catch (err) {
      if (opened) {
        try {
          module.C_Finalize();
        } catch {
          // closing after a failure: the first error is the one to report
        }
      }
      if (err instanceof Pkcs11SealError) throw err;
      throw fail('opening the token', err);
    }
  }

  private static findSlot(p: Pkcs11, module: Pkcs11Module.PKCS11, config: Pkcs11DeviceConfig, where: string): Buffer {
    let slots: Buffer[];
    try {
      slots = module.C_GetSlotList(true);
    } catch (err) {
      throw new Pkcs11SealError(`PKCS#11 seal: C_GetSlotList failed on ${where}: ${returnCode(p, err)}`);
    }
    const labels = slots.map((s) => module.C_GetTokenInfo(s).label.trim());
    const index =
      config.tokenLabel !== undefined
        ? labels.indexOf(config.tokenLabel)
        : slots.findIndex((s) => slotNumber(s) === BigInt(config.slot ?? -1));
    if (index < 0) {
      const wanted =
        config.tokenLabel !== undefined ? `a token labelled "${config.tokenLabel}"` : `slot ${config.slot}`;
      const present = slots.map((s, i) => `slot ${slotNumber(s)} (token "${labels[i]}")`).join(', ') || 'none';
      throw new Pkcs11SealError(`PKCS#11 seal: no ${wanted} in ${where}; slots with a token: ${present}`);
    }
    return slots[index]!;
  }

  private static findKey(
    p: Pkcs11,
    module: Pkcs11Module.PKCS11,
    session: Buffer,
    config: Pkcs11DeviceConfig,
    where: string,
  ): Buffer {
    const label = config.keyLabel;
    const fail = (step: string, err: unknown): Pkcs11SealError =>
      new Pkcs11SealError(`PKCS#11 seal: ${step} for key "${label}" failed on ${where}: ${returnCode(p, err)}`);
    const find = (privateOnly: boolean): Buffer[] => {
      try {
        module.C_FindObjectsInit(session, [
          { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
          { type: p.CKA_LABEL, value: label },
          ...(privateOnly ? [{ type: p.CKA_PRIVATE, value: true }] : []),
        ]);
        const keys = module.C_FindObjects(session, 2);
        module.C_FindObjectsFinal(session);
        return keys;
      } catch (err) {
        throw fail('C_FindObjects', err);
      }
    };
    // Private objects only: a session that has not logged in may use, and create, public ones, so a public key
    // under this label could be anyone's (made without the PIN, its value chosen by whoever made it).
    const found = find(true);
    if (found.length > 1) {
      throw new Pkcs11SealError(`PKCS#11 seal: more than one key is labelled "${label}" on ${where}`);
    }
    if (found.length === 0) {
      // Only public ones: refused by name, rather than passed over (with generate_key, a new key made beside one
      // that wraps the stored root key would leave the store unopenable, with a less clear error).
      if (find(false).length > 0) {
        throw new Pkcs11SealError(
          `PKCS#11 seal: key "${label}" on ${where} is refused: it can be used without logging in (CKA_PRIVATE is ` +
            'false); the seal uses only keys that only a logged-in session can use, and makes no other beside it',
        );
      }
      if (!config.generateKey) {
        throw new Pkcs11SealError(
          `PKCS#11 seal: no key labelled "${label}" on ${where} (set generate_key = true to create it)`,
        );
      }
      try {
        return module.C_GenerateKey(session, { mechanism: p.CKM_AES_KEY_GEN }, [
          { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
          { type: p.CKA_KEY_TYPE, value: p.CKK_AES },
          { type: p.CKA_VALUE_LEN, value: 32 },
          { type: p.CKA_LABEL, value: label },
          { type: p.CKA_TOKEN, value: true },
          { type: p.CKA_PRIVATE, value: true },
          { type: p.CKA_SENSITIVE, value: true },
          { type: p.CKA_EXTRACTABLE, value: false },
          { type: p.CKA_ENCRYPT, value: true },
          { type: p.CKA_DECRYPT, value: true },
        ]);
      } catch (err) {
        throw fail('C_GenerateKey (AES-256)', err);
      }
    }
    const key = found[0]!;
    let attributes: Pkcs11Module.Template;
    try {
      attributes = module.C_GetAttributeValue(session, key, [
        { type: p.CKA_KEY_TYPE },
        { type: p.CKA_EXTRACTABLE },
        { type: p.CKA_SENSITIVE },
        { type: p.CKA_TOKEN },
      ]);
    } catch (err) {
      throw fail('C_GetAttributeValue', err);
    }
    const [keyType, extractable, sensitive, onToken] = attributes.map((a) => a.value as Buffer);
    const flag = (value: Buffer | undefined): boolean => value !== undefined && value.readUInt8(0) !== 0;
    if (!keyType || keyType.readUInt8(0) !== p.CKK_AES) {
      throw new Pkcs11SealError(`PKCS#11 seal: key "${label}" on ${where} is not an AES key`);
    }
    // Each of these would let the key out of the PIN's reach (a private one was searched for); the seal's own have none.
    const unsafe: [boolean, string][] = [
      [flag(extractable), 'it is extractable (CKA_EXTRACTABLE)'],
      [!flag(sensitive), 'its value can be read (CKA_SENSITIVE is false)'],
      [!flag(onToken), 'it is a session object, gone with the session (CKA_TOKEN is false)'],
    ];
    const why = unsafe.filter(([bad]) => bad).map(([, reason]) => reason);
    if (why.length > 0) {
      throw new Pkcs11SealError(
        `PKCS#11 seal: key "${label}" on ${where} is refused: ${why.join('; ')}. The seal uses only keys that ` +
          'cannot leave the HSM and that only a logged-in session can use',
      );
    }
    return key;
  }

  /** AES-GCM inside the HSM with a fresh 96-bit IV; the IV travels with the ciphertext. */
  encrypt(plaintext: Buffer, aad: Buffer): { iv: Buffer; ciphertext: Buffer } {
    const iv = randomBytes(GCM_IV_BYTES);
    try {
      this.module.C_EncryptInit(this.session, this.mechanism(iv, aad), this.key);
      const ciphertext = this.module.C_Encrypt(this.session, plaintext, Buffer.alloc(plaintext.length + 64));
      return { iv, ciphertext: Buffer.from(ciphertext) };
    } catch (err) {
      throw new Pkcs11SealError(
        `PKCS#11 seal: C_Encrypt with key "${this.keyLabel}" failed on ${this.where}: ${returnCode(this.p, err)}`,
      );
    }
  }

  /** Throws Pkcs11SealError when the device refuses: a wrong key, or data altered in storage. */
  decrypt(iv: Buffer, ciphertext: Buffer, aad: Buffer): Buffer {
    try {
      this.module.C_DecryptInit(this.session, this.mechanism(iv, aad), this.key);
      return Buffer.from(this.module.C_Decrypt(this.session, ciphertext, Buffer.alloc(ciphertext.length + 64)));
    } catch (err) {
      throw new Pkcs11SealError(
        `PKCS#11 seal: C_Decrypt with key "${this.keyLabel}" failed on ${this.where}: ${returnCode(this.p, err)} ` +
          '(a different key under this label, or the stored root key was altered)',
      );
    }
  }

  close(): void {
    for (const step of [
      () => this.module.C_Logout(this.session),
      () => this.module.C_CloseSession(this.session),
      () => this.module.C_Finalize(),
    ]) {
      try {
        step();
      } catch {
        // best effort: the process may be ending, and the token drops the session anyway
      }
    }
  }

  private mechanism(iv: Buffer, aad: Buffer): Pkcs11Module.Mechanism {
    const parameter: Pkcs11Module.GcmParams = {
      type: this.p.CK_PARAMS_GCM,
      iv,
      ivBits: iv.length * 8,
      aad,
      tagBits: GCM_TAG_BITS,
    };
    return { mechanism: this.p.CKM_AES_GCM, parameter };
  }
}
