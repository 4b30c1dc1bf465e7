import { assertExistenceAsAuthorised } from '../../core/authorised-existence.js';
import type { Field, PathRecord, Request, Response } from '../../core/backend.js';
import { badRequest } from '../../core/errors.js';
import { answer, base64Field, itemsOf, requiredString, runItem, type Item } from './batch.js';
import { decodeBase64 } from './ciphertext.js';
import { checkKeyName, type TransitKey, type TransitKeys } from './keys.js';
import { keyTypeOf, refuseUnsupported } from './path-keys.js';
import { decryptWith, encryptWith } from './use-key.js';
import { UserError } from './user-error.js';

const nameOf = (req: Request): string => req.params.name ?? '';

const common: Record<string, Field> = {
  context: { type: 'string', description: 'Base64 context for key derivation: ignored, keys here are not derived.' },
  nonce: { type: 'string', description: 'A nonce: refused, nonces are always random here.' },
  associated_data: { type: 'string', description: 'Base64 associated data, authenticated with the ciphertext.' },
  reference: { type: 'string', description: 'Echoed back with a batch item.' },
};

const encryptItemFields: Record<string, Field> = {
  plaintext: { type: 'string', description: 'The base64 plaintext.' },
  key_version: { type: 'int', description: 'The key version to encrypt with (0: the latest).' },
  ...common,
};

const decryptItemFields: Record<string, Field> = {
  ciphertext: { type: 'string', description: 'A ciphertext this key made (vault:v<N>:...).' },
  ...common,
};

const rewrapItemFields: Record<string, Field> = { ...decryptItemFields, key_version: encryptItemFields.key_version! };

const batchFields: Record<string, Field> = {
  name: { type: 'string', description: 'The key name.' },
  batch_input: { type: 'any', description: 'A list of items, each with the fields of a single request.' },
  partial_failure_response_code: {
    type: 'int',
    description: 'The HTTP status when some batch items fail and others succeed (default 400).',
  },
};

function associatedData(item: Item): Buffer {
  return base64Field(item, 'associated_data', 'failed to base64-decode associated_data');
}

function refuseNonce(item: Item): void {
  if (typeof item.nonce === 'string' && item.nonce !== '')
    throw new UserError('provided nonce not allowed for this key');
}

function encryptItem(key: TransitKey, item: Item): Record<string, unknown> {
  refuseNonce(item);
  const plaintext = decodeBase64(
    requiredString(item, 'plaintext', 'missing plaintext to encrypt'),
    'failed to base64-decode plaintext',
  );
  return encryptWith(key, plaintext, associatedData(item), (item.key_version as number | undefined) ?? 0);
}

function decryptItem(key: TransitKey, item: Item): Record<string, unknown> {
  refuseNonce(item);
  const ciphertext = requiredString(item, 'ciphertext', 'missing ciphertext to decrypt');
  return { plaintext: decryptWith(key, ciphertext, associatedData(item)).toString('base64') };
}

function rewrapItem(key: TransitKey, item: Item): Record<string, unknown> {
  refuseNonce(item);
  const ciphertext = requiredString(item, 'ciphertext', 'missing ciphertext to decrypt');
  const aad = associatedData(item);
  const plaintext = decryptWith(key, ciphertext, aad);
  return encryptWith(key, plaintext, aad, (item.key_version as number | undefined) ?? 0);
}

/** Every item of the request through one key, answered in Vault's single or batch shape. */
function run(
  req: Request,
  key: TransitKey,
  itemFields: Record<string, Field>,
  work: (key: TransitKey, item: Item) => Record<string, unknown>,
): Response {
  const { items, batch } = itemsOf(req.data, itemFields);
  const results = items.map((item) => runItem(item, (it) => work(key, it)));
  return answer(results, batch, req.data.partial_failure_response_code);
}

/**
 * encrypt/, decrypt/ and rewrap/. None of them is a change of the mount's secrets, so none is on the change
 * stream; encrypt creates a missing key (Vault's upsert), which the ACL sees as `create` on the path.
 */
export function cryptoPaths(keys: TransitKeys): PathRecord[] {
  const existing = async (req: Request): Promise<TransitKey> => {
    checkKeyName(nameOf(req));
    const key = await keys.get(nameOf(req));
    if (!key) throw badRequest('encryption key not found');
    return key;
  };
  // A create found the key missing when it was authorised; made meanwhile by another request, the key is used, which
  // is an update: the token must be allowed that too (assertExistenceAsAuthorised).
  const keyForCreate = async (req: Request) => {
    const { key, created } = await keys.getOrCreate(nameOf(req), keyTypeOf(req.data.type));
    if (!created) await assertExistenceAsAuthorised(req, true);
    return key;
  };
  const encrypt = (upsert: boolean) => async (req: Request) => {
    refuseUnsupported(req.data);
    const key = upsert ? await keyForCreate(req) : await existing(req);
    return run(req, key, encryptItemFields, encryptItem);
  };
  return [
    {
      pattern: 'encrypt/(?<name>[^/]+)',
      storesNothing: true,
      summary: 'Encrypts base64 plaintext with a named key, creating the key if it does not exist.',
      fields: {
        ...encryptItemFields,
        ...batchFields,
        type: { type: 'string', description: 'The type of a key this request creates.', default: 'aes256-gcm96' },
        convergent_encryption: {
          type: 'bool',
          description: 'Convergent encryption for a key this request creates: not supported.',
        },
      },
      exists: async (req) => (await keys.get(nameOf(req))) !== undefined,
      changeScope: () => undefined,
      operations: { create: encrypt(true), update: encrypt(false) },
    },
    {
      pattern: 'decrypt/(?<name>[^/]+)',
      storesNothing: true,
      summary: 'Decrypts a ciphertext made by a named key; the plaintext comes back base64.',
      fields: { ...decryptItemFields, ...batchFields },
      changeScope: () => undefined,
      operations: { update: async (req) => run(req, await existing(req), decryptItemFields, decryptItem) },
    },
    {
      pattern: 'rewrap/(?<name>[^/]+)',
      storesNothing: true,
      summary: "Decrypts a ciphertext and encrypts it again with the key's latest (or a given) version.",
      description: 'The plaintext never leaves the server: what rotation needs to retire old key versions.',
      fields: { ...rewrapItemFields, ...batchFields },
      changeScope: () => undefined,
      operations: { update: async (req) => run(req, await existing(req), rewrapItemFields, rewrapItem) },
    },
  ];
}
