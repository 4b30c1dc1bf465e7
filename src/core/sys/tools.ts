import { createHash, randomBytes } from 'node:crypto';
import type { PathRecord, Request, Response } from '../backend.js';
import { badRequest } from '../errors.js';

/** Vault's names for the digests sys/tools/hash offers, and node:crypto's for the same. */
const HASHES: Record<string, string> = {
  'sha2-224': 'sha224',
  'sha2-256': 'sha256',
  'sha2-384': 'sha384',
  'sha2-512': 'sha512',
  'sha3-224': 'sha3-224',
  'sha3-256': 'sha3-256',
  'sha3-384': 'sha3-384',
  'sha3-512': 'sha3-512',
};

/** Vault's bound on sys/tools/random (its APIMaxBytes). */
export const RANDOM_MAX_BYTES = 128 * 1024;
const RANDOM_SOURCES = new Set(['', 'platform', 'seal', 'all']);

function encode(bytes: Buffer, format: string): string {
  if (format === 'hex') return bytes.toString('hex');
  return bytes.toString('base64');
}

/** Go's strict standard base64, which Vault decodes `input` with: Node's decoder would skip bad characters. */
function decodeBase64(input: string): Buffer {
  const bad = input.search(/[^A-Za-z0-9+/=]/);
  const padding = input.indexOf('=');
  const wellFormed = bad === -1 && input.length % 4 === 0 && (padding === -1 || /^={1,2}$/.test(input.slice(padding)));
  if (!wellFormed) {
    const at = bad !== -1 ? bad : padding !== -1 ? padding : input.length - (input.length % 4);
    throw badRequest(`unable to decode input as base64: illegal base64 data at input byte ${at}`);
  }
  return Buffer.from(input, 'base64');
}

async function hash(req: Request): Promise<Response> {
  const algorithm = req.params.urlalgorithm || ((req.data.algorithm as string | undefined) ?? 'sha2-256');
  const format = (req.data.format as string | undefined) ?? 'hex';
  const input = decodeBase64((req.data.input as string | undefined) ?? '');
  if (format !== 'hex' && format !== 'base64') {
    throw badRequest(`unsupported encoding format ${format}; must be "hex" or "base64"`);
  }
  const digest = Object.hasOwn(HASHES, algorithm) ? HASHES[algorithm] : undefined;
  if (!digest) throw badRequest(`unsupported algorithm ${algorithm}`);
  return { data: { sum: encode(createHash(digest).update(input).digest(), format) } };
}

/**
 * The URL's segments as Vault reads them: tools/random/N is a byte count, tools/random/SOURCE a source, and
 * tools/random/SOURCE/N both (so that policies can be written on either).
 */
function randomRequest(req: Request): { source: string; bytes: number } {
  const first = req.params.source;
  const second = req.params.urlbytes;
  const bodyBytes = (req.data.bytes as number | undefined) ?? 32;
  const count = (text: string): number => {
    if (!/^[+-]?\d+$/.test(text)) {
      throw badRequest(`error parsing url-set byte count: strconv.Atoi: parsing "${text}": invalid syntax`);
    }
    return Number(text);
  };
  if (first === undefined) return { source: (req.data.source as string | undefined) ?? 'platform', bytes: bodyBytes };
  if (second === undefined && RANDOM_SOURCES.has(first)) return { source: first, bytes: bodyBytes };
  if (second === undefined) return { source: 'platform', bytes: count(first) };
  return { source: first, bytes: count(second) };
}

async function random(req: Request): Promise<Response> {
  const { source, bytes } = randomRequest(req);
  const format = (req.data.format as string | undefined) ?? 'base64';
  if (bytes < 1) throw badRequest("'bytes' cannot be less than 1");
  if (bytes > RANDOM_MAX_BYTES) throw badRequest(`'bytes' should be less than ${RANDOM_MAX_BYTES}`);
  if (format !== 'hex' && format !== 'base64') {
    throw badRequest(`unsupported encoding format "${format}"; must be "hex" or "base64"`);
  }
  if (!RANDOM_SOURCES.has(source)) {
    throw badRequest(`unsupported entropy source "${source}"; must be "platform" or "seal", or "all"`);
  }
  const response: Response = { data: { random_bytes: encode(randomBytes(bytes), format) } };
  // The Shamir seal has no entropy of its own to add; Vault says the same when its seal has none.
  if (source === 'seal') response.warnings = ['no seal/entropy augmentation available, using platform entropy source'];
  return response;
}

/** sys/tools/hash and sys/tools/random: Vault's general-purpose tools, on node:crypto. */
export function toolPaths(): PathRecord[] {
  return [
    {
      pattern: 'tools/hash(?:/(?<urlalgorithm>.+))?',
      storesNothing: true,
      summary: 'Hashes base64-encoded input with a SHA-2 or SHA-3 digest.',
      fields: {
        input: { type: 'string', description: 'The input, base64-encoded.' },
        algorithm: {
          type: 'string',
          description: 'sha2-224, sha2-256 (default), sha2-384, sha2-512, sha3-224, sha3-256, sha3-384 or sha3-512.',
        },
        urlalgorithm: { type: 'string', description: 'The algorithm, given in the URL.' },
        format: { type: 'string', description: '"hex" (default) or "base64".' },
      },
      operations: { update: hash },
    },
    {
      pattern: 'tools/random(?:/(?<source>\\w(?:[\\w.@-]*\\w)?))?(?:/(?<urlbytes>.+))?',
      storesNothing: true,
      summary: 'Random bytes from the platform’s cryptographic generator.',
      fields: {
        bytes: { type: 'int', description: `How many bytes (default 32, at most ${RANDOM_MAX_BYTES}).` },
        urlbytes: { type: 'string', description: 'How many bytes, given in the URL.' },
        format: { type: 'string', description: '"base64" (default) or "hex".' },
        source: { type: 'string', description: '"platform" (default), "seal" or "all": all are the platform’s.' },
      },
      operations: { update: random },
    },
  ];
}
