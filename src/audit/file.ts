import {
  closeSync,
  fdatasync,
  constants,
  fchmodSync,
  fstatSync,
  ftruncateSync,
  openSync,
  readSync,
  statSync,
  write,
  writeSync,
} from 'node:fs';
import { promisify } from 'node:util';
import { open, realpath } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { chainJson, stateAfter, GENESIS, type ChainState } from '../core/audit-chain.js';
import type { AuditSink, AuditSinkFactory } from '../core/audit-broker.js';
import { ChainCell } from './chain-cell.js';
import { lastLines } from './file-tail.js';

const TAIL_BYTES = 256 * 1024;
const HEAD_BYTES = 64 * 1024;
/** How often the path is looked up to notice a rotation (a rename); a deleted file is noticed at every write. */
const ROTATION_CHECK_MS = 1000;

/** What the server configuration says about file devices. */
export interface FileDeviceConfig {
  /** `audit_file_path_prefix`: every file_path must resolve under this directory. */
  pathPrefix?: string | undefined;
}

/** Something worth an operator's attention that does not fail a request by itself. */
function warn(message: string): void {
  process.emitWarning(message, { code: 'COFRE_AUDIT' });
}

/**
 * `mode` as Vault takes it (an octal string, "0000" for "leave the mode alone"), but only read and write bits:
 * an audit log has no business being executable (with a path of `$(cmd)` logged in clear, an executable log is a
 * script an attacker wrote), set-id or sticky, or writable by everyone.
 */
export function parseMode(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return 0o600;
  if (!/^0?[0-7]{3}$/.test(value)) throw new Error(`mode "${value}" is not an octal file mode such as 0600`);
  const mode = parseInt(value, 8);
  if (mode === 0) return undefined;
  if ((mode & ~0o664) !== 0) {
    throw new Error(`mode ${value} is refused: an audit log may only be readable and writable (e.g. 0600 or 0640)`);
  }
  if ((mode & 0o600) !== 0o600) throw new Error(`mode ${value} is refused: the owner must be able to read and write`);
  return mode;
}

/**
 * The file's path with its directory's symbolic links and `..` resolved, refused unless it lies under the
 * configured prefix (itself resolved the same way). The last component is opened with O_NOFOLLOW, so it cannot
 * be a link out either.
 */
async function confinedPath(filePath: string, prefix: string | undefined): Promise<string> {
  const absolute = resolve(filePath);
  const real = join(await realpath(dirname(absolute)), basename(absolute));
  if (prefix === undefined) return real;
  const root = await realpath(resolve(prefix)).catch(() => resolve(prefix));
  if (!real.startsWith(root.endsWith(sep) ? root : root + sep)) {
    throw new Error(`file_path ${filePath} is outside audit_file_path_prefix ${prefix}`);
  }
  return real;
}

/** Cofre's own lines start like this; a line longer than what is read is judged by its start. */
const ENTRY_START = /^\{"time":"\d{4}-\d\d-\d\dT[\d:.]+Z","type":"(request|response)",/;

function isAuditLine(line: string, complete: boolean): boolean {
  if (!ENTRY_START.test(line)) return false;
  if (!complete) return true;
  try {
    const chain = (JSON.parse(line) as { chain?: { seq?: unknown; prev?: unknown } }).chain;
    return typeof chain?.seq === 'number' && typeof chain.prev === 'string';
  } catch {
    return false;
  }
}

/** Refuses a non-empty file that is not a Cofre audit log: appending to a shell profile must not work. */
function checkIsAuditLog(fd: number, path: string, size: number): void {
  if (size === 0) return;
  const buf = Buffer.alloc(Math.min(size, HEAD_BYTES));
  readSync(fd, buf, 0, buf.length, 0);
  const text = buf.toString('utf8');
  const end = text.indexOf('\n');
  const line = end < 0 ? text : text.slice(0, end);
  if (!isAuditLine(line, end >= 0)) {
    throw new Error(`${path} exists and is not a Cofre audit log: refusing to append to it`);
  }
}

/** The offset just after the last newline before `end`, or 0: scans backwards a chunk at a time. */
function lineStart(fd: number, end: number): number {
  const buf = Buffer.alloc(Math.min(end, TAIL_BYTES));
  for (let pos = end; pos > 0;) {
    const length = Math.min(pos, TAIL_BYTES);
    readSync(fd, buf, 0, length, pos - length);
    const i = buf.subarray(0, length).lastIndexOf(0x0a);
    if (i >= 0) return pos - length + i + 1;
    pos -= length;
  }
  return 0;
}

/**
 * The last complete line of a file (however long), to continue its hash chain after a restart. A torn last line
 * (one with no newline: a write cut short by a crash or a full disk) is cut off first, so the next line does not
 * get glued to it; it never was a whole entry, so nothing on record is lost.
 */
function lastLine(fd: number, path: string): string | undefined {
  const { size } = fstatSync(fd);
  const end = lineStart(fd, size);
  if (end < size) {
    warn(`audit file ${path}: cutting off a torn last line (${size - end} bytes)`);
    ftruncateSync(fd, end);
  }
  if (end === 0) return undefined;
  const start = lineStart(fd, end - 1);
  const buf = Buffer.alloc(end - 1 - start);
  readSync(fd, buf, 0, buf.length, start);
  return buf.toString('utf8');
}

/**
 * Batches up to this size are written synchronously: a thread-pool round trip per write costs more than writing a
 * few lines to the page cache. A bigger one (a request with a very large body) goes through the thread pool, so it
 * does not stall the event loop.
 */
const SYNC_WRITE_BYTES = 256 * 1024;
const writeAsync = promisify(write);

/** Writes all of buf at the end of the file, however many write calls that takes. */
async function writeAll(fd: number, buf: Buffer): Promise<void> {
  let offset = 0;
  while (offset < buf.length) {
    const length = buf.length - offset;
    const written =
      buf.length <= SYNC_WRITE_BYTES
        ? writeSync(fd, buf, offset, length)
        : (await writeAsync(fd, buf, offset, length)).bytesWritten;
    if (written === 0) throw new Error('the file takes no more bytes');
    offset += written;
  }
}

/** How much of an audit file may wait in the page cache before it is written back (see writeBack). */
const WRITE_BACK_BYTES = 1024 * 1024;

/**
 * Starts writing an audit file's data back to disk (fdatasync, on the thread pool) each WRITE_BACK_BYTES, one at a
 * time, so that the page cache never holds more than a few MiB of it. Not for the entries' sake: an entry is on
 * record once written to the file, as in Vault. For the store's: ext4 (data=ordered) makes an fsync wait for other
 * files' dirty data, and the kernel writes an unsynced log back 30 s after it was written, in one burst. Measured
 * with audited writes at 4.4 k/s on two threads: 295 MB of the log dirty, then a window whose write p99 was 365 ms
 * (34 ms in the windows before); with this, about 1 MB dirty and no such window (bench/README.md).
 */
function writeBack(path: string): { wrote(fd: number, bytes: number): void } {
  let unsynced = 0;
  let syncing = false;
  let failing = false;
  return {
    wrote(fd, bytes) {
      unsynced += bytes;
      if (syncing || unsynced < WRITE_BACK_BYTES) return;
      syncing = true;
      unsynced = 0;
      fdatasync(fd, (err) => {
        syncing = false;
        // A file closed meanwhile (rotation) has nothing left to write back here.
        const failed = err !== null && err.code !== 'EBADF';
        if (failed && !failing) warn(`audit file ${path} could not be written back to disk: ${err.message}`);
        failing = failed;
      });
    },
  };
}

interface OpenFile {
  fd: number;
  dev: number;
  ino: number;
}

/**
 * Opens the (already confined) path for appending: a regular file, empty or a Cofre audit log, never through a
 * link; `mode` is set on it when given.
 */
function openAuditFile(real: string, path: string, mode: number | undefined): OpenFile {
  const flags = constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW;
  const fd = openSync(real, flags, mode ?? 0o600);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error(`${path} is not a regular file`);
    checkIsAuditLog(fd, path, st.size);
    if (mode !== undefined) fchmodSync(fd, mode);
    return { fd, dev: st.dev, ino: st.ino };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** The chain state after the last line of the device's (confined) file, a torn last line cut off first. */
export function chainAfterLastLine(real: string, options: Record<string, string>): ChainState {
  const path = devicePath(options);
  const file = openAuditFile(real, path, parseMode(options.mode));
  try {
    return stateAfter(lastLine(file.fd, path));
  } finally {
    closeSync(file.fd);
  }
}

/** The device's file_path with links and `..` resolved, refused outside audit_file_path_prefix. */
export function devicePathConfined(options: Record<string, string>, config: FileDeviceConfig): Promise<string> {
  return confinedPath(devicePath(options), config.pathPrefix);
}

function devicePath(options: Record<string, string>): string {
  const path = options.file_path ?? options.path;
  if (!path) throw new Error('file_path is required');
  return path;
}

/**
 * Where a file device gets the chain it shares with every other device writing the same file, and gives it back
 * when it closes: a FileChains of its server, or (src/workers/audit-relay.ts) of the primary thread.
 */
export interface SharedChains {
  take(options: Record<string, string>): Promise<{ real: string; cell: SharedArrayBuffer }>;
  give(real: string): Promise<void>;
}

/**
 * The hash chain of each audit file, by its confined path, with how many devices hold it. Every device that writes
 * one file appends to one chain, which is what `cofre audit verify` checks: two devices enabled on one file (named
 * the same way or not), and the server threads' devices of one file (src/workers/). Two chains in one file would
 * read as a tampered log. A chain is continued from the file's last line when no device holds it yet.
 */
export class FileChains implements SharedChains {
  private readonly chains = new Map<string, { cell: ChainCell; users: number }>();
  private taking: Promise<unknown> = Promise.resolve();

  constructor(private readonly config: FileDeviceConfig = {}) {}

  take(options: Record<string, string>): Promise<{ real: string; cell: SharedArrayBuffer }> {
    // One at a time: a file's last line is read (and a torn one cut) only while no device writes to it.
    const taken = this.taking.then(() => this.takeNow(options));
    this.taking = taken.catch(() => undefined);
    return taken;
  }

  private async takeNow(options: Record<string, string>): Promise<{ real: string; cell: SharedArrayBuffer }> {
    const real = await devicePathConfined(options, this.config);
    let held = this.chains.get(real);
    if (!held) {
      held = { cell: ChainCell.create(chainAfterLastLine(real, options)), users: 0 };
      this.chains.set(real, held);
    }
    held.users++;
    return { real, cell: held.cell.buffer };
  }

  async give(real: string): Promise<void> {
    const held = this.chains.get(real);
    if (held && --held.users === 0) this.chains.delete(real);
  }

  /** Every writer of every file opens it again before its next line (SIGHUP: log rotation). */
  reopenAll(): void {
    for (const { cell } of this.chains.values()) cell.reopenAll();
  }
}

/**
 * The file device: appends one JSON line per entry to `file_path`, or to standard output when file_path
 * is "stdout". A line is written whole or not at all: when a write fails part-way (a full disk, a file size
 * limit), the file is cut back to where the line began and the write fails, which fails the request when no
 * other device took it. If even the cut fails, the device refuses every write until it can make it.
 *
 * A file device chains its own entries (writeEntry), under the lock of its ChainCell: the entries of one turn of
 * the event loop go out in one synchronous write (a thread-pool round trip per write cost more than the write).
 * With `shared`, the cell is the one every server thread writing the same file holds, and each thread appends
 * through its own descriptor.
 *
 * Log rotation: the file is reopened on SIGHUP (AuditBroker.reopen), when the path no longer leads to the open
 * file (renamed away, checked every ROTATION_CHECK_MS), and when the open file was deleted (checked before every
 * write, so nothing goes into a deleted inode); whichever writer notices, all of them open the new file before their
 * next line. The hash chain goes on across the files: the new file's first line
 * links to the last line of the old one, so `cofre audit verify old new` checks both as one log and the new one
 * alone verifies with `--continued`. Starting each file afresh instead would let anyone who can delete a file
 * remove a whole stretch of the log without a trace.
 */
export function fileSink(
  options: Record<string, string>,
  config: FileDeviceConfig = {},
  shared: SharedChains = new FileChains(config),
): AuditSink {
  const path = devicePath(options);
  const mode = parseMode(options.mode);
  if (path === 'stdout') return stdoutSink();
  let real: string | undefined;
  let cell: ChainCell | undefined;
  let file: OpenFile | undefined;
  /** The cell's generation this writer's file was opened at. */
  let generation = 0;
  let lastPathCheck = 0;
  let failing = false;
  let waiting: { json: string; resolve: () => void; reject: (err: unknown) => void }[] = [];
  const writtenBack = writeBack(path);

  /**
   * Under the lock: this writer's file and its size, opened again when it was deleted, moved or another writer
   * reopened (one fstat answers both whether it was deleted and where the next line starts).
   */
  const current = (held: ChainCell): { fd: number; size: number } => {
    let moved = false;
    if (file && generation === held.generation) {
      const st = fstatSync(file.fd);
      if (st.nlink === 0) {
        warn(`audit file ${path} was deleted: opening a new one`);
        moved = true;
      } else if (Date.now() - lastPathCheck >= ROTATION_CHECK_MS) {
        lastPathCheck = Date.now();
        let onDisk: { ino: number; dev: number } | undefined;
        try {
          onDisk = statSync(real!);
        } catch {
          onDisk = undefined;
        }
        moved = !onDisk || onDisk.ino !== file.ino || onDisk.dev !== file.dev;
      }
      if (!moved) return { fd: file.fd, size: st.size };
      held.reopenAll();
    }
    const old = file;
    file = undefined;
    if (old) closeSync(old.fd);
    generation = held.generation;
    const opened = openAuditFile(real!, path, mode);
    file = opened;
    lastPathCheck = Date.now();
    lastLine(opened.fd, path); // repairs a torn tail; the chain is the cell's
    return { fd: opened.fd, size: fstatSync(opened.fd).size };
  };

  /**
   * Under the lock: chains the lines on from the cell and writes them whole, or cuts the file back and fails. Other
   * threads wait for the lock asynchronously, so the big writes' await here holds up only audit writes.
   */
  const append = async (held: ChainCell, jsons: string[]): Promise<void> => {
    const opened = current(held);
    const fd = opened.fd;
    let size = opened.size;
    const repairTo = held.cutOwed(generation);
    if (repairTo !== undefined) {
      ftruncateSync(fd, repairTo);
      warn(`audit file ${path}: the torn line is cut off, writing again`);
      size = repairTo;
      held.cutMade();
    }
    let chain = held.state;
    let text = '';
    for (const json of jsons) {
      const { line, next } = chainJson(json, chain);
      text += line + '\n';
      chain = next;
    }
    try {
      const bytes = Buffer.from(text);
      await writeAll(fd, bytes);
      writtenBack.wrote(fd, bytes.length);
    } catch (err) {
      try {
        ftruncateSync(fd, size);
      } catch {
        held.oweCut(size, generation);
        warn(`audit file ${path}: a line is torn and could not be cut off; refusing writes until it can be`);
      }
      throw err;
    }
    held.state = chain;
  };

  /** One batch at a time, so that close() can wait for the one under way. */
  let flushing = Promise.resolve();
  const flush = (): Promise<void> => (flushing = flushing.then(writeWaiting));
  const writeWaiting = async (): Promise<void> => {
    const batch = waiting;
    if (batch.length === 0) return; // close() wrote them already
    waiting = [];
    try {
      const held = cell;
      if (!held) throw new Error('the audit device is closed');
      await held.locked(() =>
        append(
          held,
          batch.map((w) => w.json),
        ),
      );
      if (failing) warn(`audit file ${path} is writable again`);
      failing = false;
    } catch (err) {
      // Once per outage, not once per request.
      if (!failing) warn(`audit file ${path} cannot be written: ${(err as Error).message}`);
      failing = true;
      for (const w of batch) w.reject(err);
      return;
    }
    for (const w of batch) w.resolve();
  };

  return {
    async open() {
      const taken = await shared.take(options);
      real = taken.real;
      cell = ChainCell.of(taken.cell);
      try {
        file = openAuditFile(real, path, mode);
      } catch (err) {
        await shared.give(real);
        throw err;
      }
      generation = cell.generation;
      lastPathCheck = Date.now();
      return cell.state;
    },
    write: () => Promise.reject(new Error('a file audit device chains its own entries')),
    writeEntry(entry) {
      const json = JSON.stringify(entry);
      return new Promise<void>((resolve, reject) => {
        waiting.push({ json, resolve, reject });
        if (waiting.length === 1) setImmediate(() => void flush());
      });
    },
    // Complete lines only (a line being written by another thread has no newline yet), so no lock is needed.
    async recent(limit: number) {
      const handle = await open(real!, constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        return await lastLines(handle, (await handle.stat()).size, limit);
      } finally {
        await handle.close();
      }
    },
    async close() {
      // Entries already given are written first.
      await flush();
      const old = file;
      file = undefined;
      cell = undefined;
      if (old) closeSync(old.fd);
      if (real !== undefined) await shared.give(real);
    },
    async reopen() {
      cell?.reopenAll();
    },
  };
}

/** A file device on standard output: lines chained by the broker, written in order. */
function stdoutSink(): AuditSink {
  return {
    open: async () => GENESIS,
    write: (line) =>
      new Promise<void>((resolve, reject) => process.stdout.write(line, (err) => (err ? reject(err) : resolve()))),
    close: async () => {},
  };
}

/** The file device factory, with the server's configuration: its devices share one chain per file. */
export function fileSinkFactory(
  config: FileDeviceConfig,
  shared: SharedChains = new FileChains(config),
): AuditSinkFactory {
  return (options) => fileSink(options, config, shared);
}
