/**
 * The writes of one flush (src/storage/sqlite.ts) as one buffer, for the commit thread. Handed over as objects,
 * each write cost the server thread a copy of every value (the caller may reuse its buffer), the structured clone
 * of every op and a copy of every value again, and the commit thread as much to take it apart: measured under the
 * KV write benchmark, postMessage and the copies were 7 % of the thread that serves every write. Encoded, each
 * value is copied into a scratch buffer that is reused, the flush's bytes once more into a buffer of their own,
 * and that crosses as one transferred buffer that the commit thread reads in place.
 *
 * Layout, all integers big-endian u32 unless said: per call, its op count; per op, one tag byte, the key's length
 * in bytes and the key as UTF-16 (lossless: a key that is not well-formed Unicode reaches SQLite exactly as a
 * structured clone would have brought it), then for tags with a value its length and bytes.
 */
import type { StorageOp } from '../core/storage.js';

/** A flush's calls, in order; `bytes` owns its ArrayBuffer (exact size), which the sender transfers. */
export interface EncodedCalls {
  calls: number;
  bytes: Uint8Array<ArrayBuffer>;
}

const PUT = 0;
const DELETE = 1;
const CHECK_VALUE = 2;
const CHECK_ABSENT = 3;
const CHECK_PREFIX = 4;
const APPEND = 5;

const INITIAL_SCRATCH = 64 * 1024;
/** A scratch buffer grown past this (by one large write) is let go at the next take instead of kept for good. */
const KEPT_SCRATCH = 1024 * 1024;

export class CallEncoder {
  private scratch = Buffer.allocUnsafeSlow(INITIAL_SCRATCH);
  private at = 0;
  private calls = 0;

  /**
   * Appends one caller's ops, copying their values now. A malformed op throws and leaves nothing of the call
   * behind, so the calls before and after it are encoded as if it had never been offered.
   */
  add(ops: readonly StorageOp[]): void {
    const start = this.at;
    try {
      this.ensure(4);
      this.at = this.scratch.writeUInt32BE(ops.length, this.at);
      for (const op of ops) this.op(op);
    } catch (err) {
      this.at = start;
      throw err;
    }
    this.calls++;
  }

  /** The calls added since the last take, in a buffer of their own; the encoder starts again empty. */
  take(): EncodedCalls {
    const bytes = new Uint8Array(new ArrayBuffer(this.at));
    bytes.set(this.scratch.subarray(0, this.at));
    const out = { calls: this.calls, bytes };
    this.at = 0;
    this.calls = 0;
    if (this.scratch.length > KEPT_SCRATCH) this.scratch = Buffer.allocUnsafeSlow(INITIAL_SCRATCH);
    return out;
  }

  private op(op: StorageOp): void {
    if (typeof op.key !== 'string') throw new TypeError('storage key must be a string');
    if (op.op === 'delete') return this.keyed(DELETE, op.key);
    if (op.op === 'put') return this.keyed(PUT, op.key, bytesOf(op.value, 'storage value'));
    if (op.op === 'append') return this.keyed(APPEND, op.key, bytesOf(op.value, 'storage value'));
    if (op.op !== 'check') throw new TypeError('storage op must be put, delete, append or check');
    if ('prefix' in op) return this.keyed(CHECK_PREFIX, op.key, bytesOf(op.prefix, 'check prefix'));
    if (op.value === null) return this.keyed(CHECK_ABSENT, op.key);
    return this.keyed(CHECK_VALUE, op.key, bytesOf(op.value, 'check value'));
  }

  /** `value`: present exactly for the tags that carry one (the callers above decide by tag). */
  private keyed(tag: number, key: string, value?: Uint8Array): void {
    this.ensure(1 + 4 + key.length * 2 + (value === undefined ? 0 : 4 + value.byteLength));
    this.scratch[this.at] = tag;
    const keyLength = this.scratch.write(key, this.at + 5, 'utf16le');
    this.scratch.writeUInt32BE(keyLength, this.at + 1);
    this.at += 5 + keyLength;
    if (value !== undefined) {
      this.at = this.scratch.writeUInt32BE(value.byteLength, this.at);
      this.scratch.set(value, this.at);
      this.at += value.byteLength;
    }
  }

  private ensure(more: number): void {
    if (this.at + more <= this.scratch.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(this.scratch.length * 2, this.at + more));
    this.scratch.copy(grown, 0, 0, this.at);
    this.scratch = grown;
  }
}

function bytesOf(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array`);
  return value;
}

/** The calls of an encoded flush; values are views of `encoded.bytes`, not copies. */
export function decodeCalls(encoded: EncodedCalls): StorageOp[][] {
  const buf = Buffer.from(encoded.bytes.buffer, encoded.bytes.byteOffset, encoded.bytes.byteLength);
  let at = 0;
  const bytes = (): Buffer => {
    const length = buf.readUInt32BE(at);
    at += 4;
    if (at + length > buf.length) throw new RangeError('an encoded storage batch is cut short');
    const out = buf.subarray(at, at + length);
    at += length;
    return out;
  };
  const calls: StorageOp[][] = [];
  for (let c = 0; c < encoded.calls; c++) {
    const count = buf.readUInt32BE(at);
    at += 4;
    const ops: StorageOp[] = [];
    for (let i = 0; i < count; i++) {
      const tag = buf.readUInt8(at++);
      const key = bytes().toString('utf16le');
      if (tag === PUT) ops.push({ op: 'put', key, value: bytes() });
      else if (tag === DELETE) ops.push({ op: 'delete', key });
      else if (tag === APPEND) ops.push({ op: 'append', key, value: bytes() });
      else if (tag === CHECK_VALUE) ops.push({ op: 'check', key, value: bytes() });
      else if (tag === CHECK_ABSENT) ops.push({ op: 'check', key, value: null });
      else if (tag === CHECK_PREFIX) ops.push({ op: 'check', key, prefix: bytes() });
      else throw new RangeError(`an encoded storage batch has an unknown op tag ${tag}`);
    }
    calls.push(ops);
  }
  if (at !== buf.length) throw new RangeError('an encoded storage batch has bytes left over');
  return calls;
}
