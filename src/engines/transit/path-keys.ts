import type { Field, PathRecord, Request, Response } from '../../core/backend.js';
import { badRequest, notFound } from '../../core/errors.js';
import { isKeyType, KEY_TYPES, type KeyType } from './ciphers.js';
import { checkKeyName, type StoredKey, type TransitKey, type TransitKeys } from './keys.js';

const nameOf = (req: Request): string => req.params.name ?? '';

/** Vault's key read: which versions exist (and when they were made) and the key's rules, never the material. */
export function keyInfo(key: TransitKey): Record<string, unknown> {
  const keys: Record<string, number> = {};
  for (const [version, entry] of Object.entries(key.versions)) keys[version] = entry.creation_time;
  return {
    name: key.name,
    type: key.type,
    keys,
    latest_version: key.latest_version,
    min_available_version: 0,
    min_decryption_version: key.min_decryption_version,
    min_encryption_version: key.min_encryption_version,
    deletion_allowed: key.deletion_allowed,
    derived: false,
    exportable: false,
    allow_plaintext_backup: false,
    imported_key: false,
    auto_rotate_period: 0,
    supports_encryption: true,
    supports_decryption: true,
    supports_derivation: true,
    supports_signing: false,
  };
}

/** Vault options this engine does not offer: refused when asked for, so nobody believes they hold. */
export function refuseUnsupported(data: Record<string, unknown>): void {
  if (data.derived === true) throw badRequest('key derivation (derived) is not supported by this transit engine');
  if (data.convergent_encryption === true) {
    throw badRequest('convergent encryption is not supported by this transit engine');
  }
  if (data.exportable === true) throw badRequest('exportable keys are not supported by this transit engine');
  if (data.allow_plaintext_backup === true) {
    throw badRequest('plaintext backups are not supported by this transit engine');
  }
  if (typeof data.auto_rotate_period === 'number' && data.auto_rotate_period !== 0) {
    throw badRequest('auto_rotate_period is not supported by this transit engine: rotate with keys/<name>/rotate');
  }
}

export function keyTypeOf(value: unknown): KeyType {
  const type = typeof value === 'string' && value !== '' ? value : 'aes256-gcm96';
  if (!isKeyType(type)) throw badRequest(`unknown key type "${type}": supported are ${KEY_TYPES.join(', ')}`);
  return type;
}

const unsupportedFields: Record<string, Field> = {
  derived: { type: 'bool', description: 'Key derivation: not supported, only false is accepted.' },
  convergent_encryption: { type: 'bool', description: 'Convergent encryption: not supported, only false is accepted.' },
  exportable: { type: 'bool', description: 'Exportable keys: not supported, only false is accepted.' },
  allow_plaintext_backup: { type: 'bool', description: 'Plaintext backups: not supported, only false is accepted.' },
  auto_rotate_period: { type: 'duration', description: 'Automatic rotation: not supported, only 0 is accepted.' },
};

const createFields: Record<string, Field> = {
  name: { type: 'string', description: 'The key name.' },
  type: { type: 'string', description: `The key type: ${KEY_TYPES.join(' or ')}.`, default: 'aes256-gcm96' },
  ...unsupportedFields,
};

const configFields: Record<string, Field> = {
  name: { type: 'string', description: 'The key name.' },
  min_decryption_version: {
    type: 'int',
    description: 'The oldest key version whose ciphertexts may still be decrypted (0 keeps it).',
  },
  min_encryption_version: {
    type: 'int',
    description: 'The oldest key version a request may ask to encrypt with (0: only the latest is used by default).',
  },
  deletion_allowed: { type: 'bool', description: 'Whether the key may be deleted.' },
  ...unsupportedFields,
};

function applyConfig(stored: StoredKey, data: Record<string, unknown>): void {
  if (typeof data.deletion_allowed === 'boolean') stored.deletion_allowed = data.deletion_allowed;
  const minDecryption = data.min_decryption_version;
  if (typeof minDecryption === 'number' && minDecryption !== 0) {
    if (minDecryption < 0) throw badRequest('min decryption version cannot be negative');
    if (minDecryption > stored.latest_version) {
      throw badRequest(
        `cannot set min decryption version of ${minDecryption}, latest key version is ${stored.latest_version}`,
      );
    }
    stored.min_decryption_version = minDecryption;
  }
  const minEncryption = data.min_encryption_version;
  if (typeof minEncryption === 'number') {
    if (minEncryption < 0) throw badRequest('min encryption version cannot be negative');
    if (minEncryption > stored.latest_version) {
      throw badRequest(
        `cannot set min encryption version of ${minEncryption}, latest key version is ${stored.latest_version}`,
      );
    }
    stored.min_encryption_version = minEncryption;
  }
  if (stored.min_encryption_version > 0 && stored.min_encryption_version < stored.min_decryption_version) {
    throw badRequest(
      `cannot set min encryption/decryption values; min encryption version of ${stored.min_encryption_version} ` +
        `must be greater than or equal to min decryption version of ${stored.min_decryption_version}`,
    );
  }
}

export function keyPaths(keys: TransitKeys): PathRecord[] {
  const found = async (req: Request): Promise<TransitKey> => {
    const key = await keys.get(nameOf(req));
    if (!key) throw badRequest('key not found');
    return key;
  };
  return [
    {
      pattern: 'keys/?',
      summary: 'Lists the named keys.',
      operations: { list: async () => ({ data: { keys: await keys.list() } }) },
    },
    {
      pattern: 'keys/(?<name>[^/]+)',
      summary: 'Creates, reads or deletes a named encryption key.',
      description:
        'A key is a ring of versions of one type (aes256-gcm96 or chacha20-poly1305). Its material is stored ' +
        'through the barrier and never returned; a read shows its versions and rules. Deletion must be allowed ' +
        'first with keys/<name>/config.',
      fields: createFields,
      exists: async (req) => (await keys.get(nameOf(req))) !== undefined,
      operations: {
        read: async (req) => {
          const key = await keys.get(nameOf(req));
          if (!key) throw notFound();
          return { data: keyInfo(key) };
        },
        create: createKey(keys),
        update: createKey(keys),
        delete: async (req) => {
          checkKeyName(nameOf(req));
          if (!(await keys.delete(nameOf(req)))) throw badRequest(`error deleting key "${nameOf(req)}": not found`);
          return undefined;
        },
      },
    },
    {
      pattern: 'keys/(?<name>[^/]+)/config',
      summary: "Changes a key's rules: the oldest version that decrypts, and whether it may be deleted.",
      fields: configFields,
      operations: {
        update: async (req) => {
          refuseUnsupported(req.data);
          await found(req);
          const changed = await keys.update(nameOf(req), (stored) => applyConfig(stored, req.data));
          if (!changed) throw badRequest('key not found');
          return { data: keyInfo(changed) };
        },
      },
    },
    {
      pattern: 'keys/(?<name>[^/]+)/rotate',
      summary: 'Adds a new version to a key; new encryptions use it, older versions still decrypt.',
      fields: { name: { type: 'string', description: 'The key name.' } },
      operations: {
        update: async (req) => {
          const rotated = await keys.rotate(nameOf(req));
          if (!rotated) throw badRequest('key not found');
          return { data: keyInfo(rotated) };
        },
      },
    },
  ];
}

function createKey(keys: TransitKeys): (req: Request) => Promise<Response> {
  return async (req) => {
    refuseUnsupported(req.data);
    const { key, created } = await keys.getOrCreate(nameOf(req), keyTypeOf(req.data.type));
    return { data: keyInfo(key), ...(created ? {} : { warnings: [`key ${key.name} already existed`] }) };
  };
}
