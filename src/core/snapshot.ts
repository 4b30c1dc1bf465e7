/**
 * Snapshots of a whole store, for backup and restore. A snapshot holds the entries exactly as the store holds them:
 * barrier-encrypted values, plus the seal configuration and the root key as the seal wrapped it. It holds nothing in
 * clear and is of use only with the unseal keys (or seal) of the store it was taken from.
 *
 * Format, gzip-compressed; integers are unsigned big-endian:
 *
 *   header   "COFRSNAP" (8 bytes) | format version u16 (1) | created at u64 (milliseconds since the epoch)
 *   entry    0x01 | key length u32 | key (UTF-8) | value length u32 | value           (repeated, keyring last)
 *   trailer  0x02 | entry count u64 | SHA-256 of every byte before it (header, entries, 0x02 and the count)
 *
 * Nothing may follow the trailer. Gzip's CRC catches most damage to the file; the SHA-256 and the count also catch
 * a snapshot that was cut short or altered before compression.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import type { Storage, StorageEntry } from './storage.js';
import {
  BatchWriter,
  clearStore,
  isEmpty,
  KEYRING_KEY,
  ROOT_KEY_KEY,
  SEAL_CONFIG_KEY,
  StoreNotEmptyError,
  walkConsistently,
  type ProgressListener,
  type ReadableStore,
} from './store-copy.js';

export const SNAPSHOT_FORMAT_VERSION = 1;
const MAGIC = Buffer.from('COFRSNAP', 'ascii');
const HEADER_BYTES = MAGIC.length + 2 + 8;
const TAG_ENTRY = 0x01;
const TAG_TRAILER = 0x02;
/** The tag and the two lengths around an entry's key and value. */
const ENTRY_OVERHEAD = 1 + 4 + 4;
/** Far above any real key or value; bounds what a corrupted length can make the reader buffer. */
const MAX_KEY_BYTES = 64 * 1024;
const MAX_VALUE_BYTES = 128 * 1024 * 1024;
/** Entries are gathered into chunks of about this size before compression. */
const CHUNK_BYTES = 64 * 1024;

/** The snapshot cannot be used: not a snapshot, another format version, cut short or damaged. */
export class SnapshotError extends Error {}

export interface SnapshotInfo {
  formatVersion: number;
  createdAt: Date;
  entries: number;
  /** Keys and values, uncompressed. */
  bytes: number;
  /** The trailer's SHA-256, hex. */
  sha256: string;
  /** The entries a restore checks the snapshot against its target with (stored in clear, not secret). */
  sealConfig?: Buffer;
  rootKey?: Buffer;
  hasKeyring: boolean;
}

function encodeEntry(entry: StorageEntry): Buffer {
  const key = Buffer.from(entry.key, 'utf8');
  // A key with a lone surrogate would come back as another key (U+FFFD): refuse it rather than restore it wrong.
  if (key.toString('utf8') !== entry.key)
    throw new Error(`storage key ${JSON.stringify(entry.key)} is not valid UTF-16`);
  if (key.length > MAX_KEY_BYTES) throw new Error(`storage key is longer than ${MAX_KEY_BYTES} bytes: ${entry.key}`);
  if (entry.value.byteLength > MAX_VALUE_BYTES) {
    throw new Error(`storage entry ${entry.key} is larger than a snapshot allows (${MAX_VALUE_BYTES} bytes)`);
  }
  const out = Buffer.alloc(ENTRY_OVERHEAD + key.length + entry.value.byteLength);
  out[0] = TAG_ENTRY;
  out.writeUInt32BE(key.length, 1);
  key.copy(out, 5);
  out.writeUInt32BE(entry.value.byteLength, 5 + key.length);
  out.set(entry.value, ENTRY_OVERHEAD + key.length);
  return out;
}

/** The uncompressed snapshot of a sequence of entries. */
async function* encodeSnapshot(
  entries: AsyncIterable<StorageEntry>,
  createdAt: Date,
  onProgress?: ProgressListener,
): AsyncGenerator<Buffer> {
  const hash = createHash('sha256');
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt16BE(SNAPSHOT_FORMAT_VERSION, MAGIC.length);
  header.writeBigUInt64BE(BigInt(createdAt.getTime()), MAGIC.length + 2);
  hash.update(header);
  let chunk: Buffer[] = [header];
  let chunkBytes = header.length;
  let count = 0;
  let bytes = 0;
  for await (const entry of entries) {
    const record = encodeEntry(entry);
    hash.update(record);
    count++;
    bytes += record.length - ENTRY_OVERHEAD;
    chunk.push(record);
    chunkBytes += record.length;
    if (chunkBytes >= CHUNK_BYTES) {
      onProgress?.({ phase: 'reading', entries: count, bytes });
      yield Buffer.concat(chunk, chunkBytes);
      chunk = [];
      chunkBytes = 0;
    }
  }
  const trailer = Buffer.alloc(1 + 8);
  trailer[0] = TAG_TRAILER;
  trailer.writeBigUInt64BE(BigInt(count), 1);
  hash.update(trailer);
  chunk.push(trailer, hash.digest());
  onProgress?.({ phase: 'reading', entries: count, bytes });
  yield Buffer.concat(chunk);
}

/**
 * A snapshot of the store as a gzip byte stream, produced as it is read (never the whole store in memory). Taken
 * from the store's read view when it offers one, else key by key from the live store: see walkEntries for what that
 * guarantees while writes go on.
 */
export function snapshotStream(
  store: ReadableStore,
  opts: { onProgress?: ProgressListener; createdAt?: Date } = {},
): Readable {
  const gzip = createGzip();
  const source = Readable.from(encodeSnapshot(walkConsistently(store), opts.createdAt ?? new Date(), opts.onProgress));
  // pipeline destroys both streams on failure: the consumer sees the error, and a consumer that goes away ends the
  // walk (and releases a read view).
  pipeline(source, gzip).catch(() => {});
  return gzip;
}

/** Reads exactly the bytes asked for from a stream of chunks. */
class ByteReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;

  constructor(private readonly source: AsyncIterator<Buffer>) {}

  /** Exactly n bytes, or undefined if the input ends first. */
  async read(n: number): Promise<Buffer | undefined> {
    while (this.buffered < n && !this.ended) {
      const next = await this.source.next();
      if (next.done) this.ended = true;
      else {
        this.chunks.push(next.value);
        this.buffered += next.value.length;
      }
    }
    if (this.buffered < n) return undefined;
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    this.chunks = all.length > n ? [all.subarray(n)] : [];
    this.buffered -= n;
    return all.subarray(0, n);
  }

  /** Stops the source early (it holds a file or a request open). */
  async close(): Promise<void> {
    await this.source.return?.();
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

async function* gunzip(input: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  const inflate = createGunzip();
  const done = pipeline(input instanceof Readable ? input : Readable.from(input), inflate);
  done.catch(() => {}); // seen below, through the inflate stream's own error
  try {
    for await (const chunk of inflate) yield chunk as Buffer;
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    if (code.startsWith('Z_')) {
      const reason = code === 'Z_BUF_ERROR' ? 'it is cut short' : (err as Error).message;
      throw new SnapshotError(`not a valid snapshot: the gzip data is damaged (${reason})`);
    }
    throw err;
  } finally {
    inflate.destroy();
  }
}

/**
 * The entries of a snapshot, then (as the generator's return value) what it holds, once the trailer's count and
 * SHA-256 match. Entries come before they are verified: a caller must not act on them until the generator returns,
 * and every defect (not a snapshot, unknown version, bad lengths, truncation, checksum) throws SnapshotError.
 */
export async function* readSnapshot(input: AsyncIterable<Uint8Array>): AsyncGenerator<StorageEntry, SnapshotInfo> {
  const reader = new ByteReader(gunzip(input));
  try {
    return yield* parseSnapshot(reader);
  } finally {
    await reader.close();
  }
}

async function* parseSnapshot(reader: ByteReader): AsyncGenerator<StorageEntry, SnapshotInfo> {
  const hash = createHash('sha256');
  const need = async (n: number, where: string): Promise<Buffer> => {
    const bytes = await reader.read(n);
    if (!bytes) throw new SnapshotError(`snapshot is truncated: it ends ${where}`);
    hash.update(bytes);
    return bytes;
  };
  const header = await reader.read(HEADER_BYTES);
  if (!header) throw new SnapshotError('not a Cofre snapshot: it is shorter than a snapshot header');
  if (!header.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new SnapshotError('not a Cofre snapshot: its header does not start with COFRSNAP');
  }
  hash.update(header);
  const formatVersion = header.readUInt16BE(MAGIC.length);
  if (formatVersion !== SNAPSHOT_FORMAT_VERSION) {
    throw new SnapshotError(
      `snapshot format version ${formatVersion} is not supported (this Cofre reads version ${SNAPSHOT_FORMAT_VERSION})`,
    );
  }
  const createdAt = new Date(Number(header.readBigUInt64BE(MAGIC.length + 2)));
  const info: SnapshotInfo = { formatVersion, createdAt, entries: 0, bytes: 0, sha256: '', hasKeyring: false };
  for (;;) {
    const tag = (await need(1, `after entry ${info.entries}, before its trailer`))[0];
    if (tag === TAG_TRAILER) break;
    if (tag !== TAG_ENTRY) {
      throw new SnapshotError(
        `snapshot is damaged: unknown record type 0x${tag?.toString(16)} after entry ${info.entries}`,
      );
    }
    const where = `inside entry ${info.entries + 1}`;
    const keyLength = (await need(4, where)).readUInt32BE(0);
    if (keyLength > MAX_KEY_BYTES)
      throw new SnapshotError(`snapshot is damaged: entry ${info.entries + 1} has a key of ${keyLength} bytes`);
    let key: string;
    try {
      key = utf8.decode(await need(keyLength, where));
    } catch (err) {
      if (err instanceof SnapshotError) throw err;
      throw new SnapshotError(`snapshot is damaged: the key of entry ${info.entries + 1} is not UTF-8`);
    }
    const valueLength = (await need(4, where)).readUInt32BE(0);
    if (valueLength > MAX_VALUE_BYTES) {
      throw new SnapshotError(`snapshot is damaged: entry ${info.entries + 1} has a value of ${valueLength} bytes`);
    }
    const value = await need(valueLength, where);
    info.entries++;
    info.bytes += keyLength + valueLength;
    if (key === SEAL_CONFIG_KEY) info.sealConfig = Buffer.from(value);
    else if (key === ROOT_KEY_KEY) info.rootKey = Buffer.from(value);
    else if (key === KEYRING_KEY) info.hasKeyring = true;
    yield { key, value };
  }
  const count = Number((await need(8, 'inside its trailer')).readBigUInt64BE(0));
  const expected = hash.digest();
  const stored = await reader.read(expected.length);
  if (!stored) throw new SnapshotError('snapshot is truncated: it ends inside its trailer');
  if (!timingSafeEqual(stored, expected)) {
    throw new SnapshotError('snapshot is damaged: its SHA-256 checksum does not match its content');
  }
  if (count !== info.entries) {
    throw new SnapshotError(`snapshot is damaged: its trailer counts ${count} entries, it holds ${info.entries}`);
  }
  if (await reader.read(1)) throw new SnapshotError('snapshot is damaged: there are bytes after its trailer');
  info.sha256 = expected.toString('hex');
  return info;
}

/** Reads a whole snapshot and checks it, writing nothing. */
export async function verifySnapshot(
  input: AsyncIterable<Uint8Array>,
  onProgress?: ProgressListener,
): Promise<SnapshotInfo> {
  const entries = readSnapshot(input);
  let bytes = 0;
  let count = 0;
  for (;;) {
    const next = await entries.next();
    if (next.done) return next.value;
    count++;
    bytes += Buffer.byteLength(next.value.key) + next.value.value.byteLength;
    if (count % 256 === 0) onProgress?.({ phase: 'verifying', entries: count, bytes });
  }
}

export interface RestoreOptions {
  /** Restore into a store that is not empty: its entries are deleted first. */
  force?: boolean;
  onProgress?: ProgressListener;
  /**
   * Runs once the snapshot is verified, before the first write to the target; may refuse the snapshot by throwing
   * (the target is then untouched) or prepare the target (a server seals itself here).
   */
  beforeWrite?: (info: SnapshotInfo) => Promise<void> | void;
  /** Where the snapshot is kept while it is verified (default: the system's temporary directory). */
  tmpDir?: string;
  /** Over a restore left unfinished (offline, the server stopped); otherwise a store another copy marked is refused. */
  overUnfinished?: boolean;
}

function notEmpty(): StoreNotEmptyError {
  return new StoreNotEmptyError('the target store is not empty: restoring would replace everything in it (use force)');
}

/**
 * Restores a snapshot into target. The snapshot is first received into a temporary file and verified whole, so a
 * snapshot that is damaged or cut short leaves the target untouched; only then is the target cleared (with force)
 * and written, in transactions of bounded size, with the seal configuration last. A failure while writing leaves a
 * target that reads as not initialized and is marked as being copied into (sys/init refuses it); restoring again
 * over the unfinished copy (`overUnfinished`, offline) recovers it.
 */
export async function restoreSnapshot(
  input: AsyncIterable<Uint8Array>,
  target: Storage,
  opts: RestoreOptions = {},
): Promise<SnapshotInfo> {
  // Checked before receiving too, so a refusal does not wait for a large upload.
  if (!opts.force && !(await isEmpty(target))) throw notEmpty();
  const dir = await mkdtemp(join(opts.tmpDir ?? tmpdir(), 'cofre-restore-'));
  try {
    const file = join(dir, 'snapshot.gz');
    let received = 0;
    await pipeline(
      input,
      async function* (chunks: AsyncIterable<Uint8Array>) {
        for await (const chunk of chunks) {
          received += chunk.byteLength;
          opts.onProgress?.({ phase: 'receiving', entries: 0, bytes: received });
          yield chunk;
        }
      },
      createWriteStream(file, { mode: 0o600 }),
    );
    const info = await verifySnapshot(createReadStream(file), opts.onProgress);
    if (!opts.force && !(await isEmpty(target))) throw notEmpty();
    await opts.beforeWrite?.(info);
    await clearStore(target, opts.onProgress, { overUnfinished: opts.overUnfinished ?? false });
    const writer = new BatchWriter(target, opts.onProgress);
    const replay = readSnapshot(createReadStream(file));
    for (;;) {
      const next = await replay.next();
      // The file is private to this process, but if it changed since it was verified, the trailer fails here,
      // before the seal configuration is written.
      if (next.done) {
        if (next.value.sha256 !== info.sha256) throw new SnapshotError('snapshot changed while it was restored');
        break;
      }
      await writer.add(next.value);
    }
    await writer.finish();
    return info;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
