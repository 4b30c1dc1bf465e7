import { constants } from 'node:fs';
import { open, realpath, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { stateAfter, GENESIS } from '../core/audit-chain.js';
import type { AuditSink, AuditSinkFactory } from '../core/audit-broker.js';
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
async function checkIsAuditLog(handle: FileHandle, path: string, size: number): Promise<void> {
  if (size === 0) return;
  const buf = Buffer.alloc(Math.min(size, HEAD_BYTES));
  await handle.read(buf, 0, buf.length, 0);
  const text = buf.toString('utf8');
  const end = text.indexOf('\n');
  const line = end < 0 ? text : text.slice(0, end);
  if (!isAuditLine(line, end >= 0)) {
    throw new Error(`${path} exists and is not a Cofre audit log: refusing to append to it`);
  }
}

/** The offset just after the last newline before `end`, or 0: scans backwards a chunk at a time. */
async function lineStart(handle: FileHandle, end: number): Promise<number> {
  const buf = Buffer.alloc(Math.min(end, TAIL_BYTES));
  for (let pos = end; pos > 0;) {
    const length = Math.min(pos, TAIL_BYTES);
    await handle.read(buf, 0, length, pos - length);
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
async function lastLine(handle: FileHandle, path: string): Promise<string | undefined> {
  const { size } = await handle.stat();
  const end = await lineStart(handle, size);
  if (end < size) {
    warn(`audit file ${path}: cutting off a torn last line (${size - end} bytes)`);
    await handle.truncate(end);
  }
  if (end === 0) return undefined;
  const start = await lineStart(handle, end - 1);
  const buf = Buffer.alloc(end - 1 - start);
  await handle.read(buf, 0, buf.length, start);
  return buf.toString('utf8');
}

/** Writes all of buf at the end of the file, however many write calls that takes. */
async function writeAll(handle: FileHandle, buf: Buffer): Promise<void> {
  let offset = 0;
  while (offset < buf.length) {
    const { bytesWritten } = await handle.write(buf, offset, buf.length - offset);
    if (bytesWritten === 0) throw new Error('the file takes no more bytes');
    offset += bytesWritten;
  }
}

interface OpenFile {
  handle: FileHandle;
  dev: number;
  ino: number;
}

/**
 * The file audit device: appends one JSON line per entry to `file_path`, or to standard output when file_path
 * is "stdout". A line is written whole or not at all: when a write fails part-way (a full disk, a file size
 * limit), the file is cut back to where the line began and the write fails, which fails the request when no
 * other device took it. If even the cut fails, the device refuses every write until it can make it.
 *
 * Log rotation: the file is reopened on SIGHUP (AuditBroker.reopen), when the path no longer leads to the open
 * file (renamed away, checked every ROTATION_CHECK_MS), and when the open file was deleted (checked before every
 * write, so nothing goes into a deleted inode). The hash chain goes on across the files: the new file's first line
 * links to the last line of the old one, so `cofre audit verify old new` checks both as one log and the new one
 * alone verifies with `--continued`. Starting each file afresh instead would let anyone who can delete a file
 * remove a whole stretch of the log without a trace.
 */
export function fileSink(options: Record<string, string>, config: FileDeviceConfig = {}): AuditSink {
  const path = options.file_path ?? options.path;
  if (!path) throw new Error('file_path is required');
  const mode = parseMode(options.mode);
  const toStdout = path === 'stdout';
  let file: OpenFile | undefined;
  let lastPathCheck = 0;
  /** Where the file must be cut back to before anything else is written (a cut that failed). */
  let repairTo: number | undefined;

  const openFile = async (): Promise<OpenFile> => {
    const real = await confinedPath(path, config.pathPrefix);
    const flags = constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW;
    const handle = await open(real, flags, mode ?? 0o600);
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw new Error(`${path} is not a regular file`);
      await checkIsAuditLog(handle, path, st.size);
      if (mode !== undefined) await handle.chmod(mode);
      return { handle, dev: st.dev, ino: st.ino };
    } catch (err) {
      await handle.close();
      throw err;
    }
  };

  const reopen = async (): Promise<OpenFile> => {
    const old = file;
    file = undefined;
    repairTo = undefined; // a cut still owed was owed by the old file
    await old?.handle.close().catch(() => undefined);
    file = await openFile();
    lastPathCheck = Date.now();
    await lastLine(file.handle, path); // repairs a torn tail; the chain state stays the broker's
    return file;
  };

  /** The open file and its size, reopened first when it was deleted or the path now leads elsewhere. */
  const current = async (): Promise<{ handle: FileHandle; size: number }> => {
    if (!file) file = await reopen();
    let st = await file.handle.stat();
    let moved = st.nlink === 0;
    if (moved) warn(`audit file ${path} was deleted: opening a new one`);
    if (!moved && Date.now() - lastPathCheck >= ROTATION_CHECK_MS) {
      lastPathCheck = Date.now();
      const onDisk = await stat(path).catch(() => undefined);
      moved = !onDisk || onDisk.ino !== file.ino || onDisk.dev !== file.dev;
    }
    if (moved) {
      file = await reopen();
      st = await file.handle.stat();
    }
    return { handle: file.handle, size: st.size };
  };

  /** Writes the line whole, or cuts the file back to where it began and fails. */
  const append = async (line: string): Promise<void> => {
    const opened = await current();
    const handle = opened.handle;
    let size = opened.size;
    if (repairTo !== undefined) {
      await handle.truncate(repairTo);
      warn(`audit file ${path}: the torn line is cut off, writing again`);
      size = repairTo;
      repairTo = undefined;
    }
    try {
      await writeAll(handle, Buffer.from(line));
    } catch (err) {
      await handle.truncate(size).catch(() => {
        repairTo = size;
        warn(`audit file ${path}: a line is torn and could not be cut off; refusing writes until it can be`);
      });
      throw err;
    }
  };

  let failing = false;
  const sink: AuditSink = {
    // Only a file can be read back; the broker calls this in the device's queue, between whole lines.
    ...(toStdout
      ? {}
      : {
          async recent(limit: number) {
            const { handle, size } = await current();
            return lastLines(handle, size, limit);
          },
        }),
    async open() {
      if (toStdout) return GENESIS;
      file = await openFile();
      lastPathCheck = Date.now();
      return stateAfter(await lastLine(file.handle, path));
    },
    async write(line) {
      if (toStdout) {
        await new Promise<void>((resolve, reject) =>
          process.stdout.write(line, (err) => (err ? reject(err) : resolve())),
        );
        return;
      }
      try {
        await append(line);
        if (failing) warn(`audit file ${path} is writable again`);
        failing = false;
      } catch (err) {
        // Once per outage, not once per request.
        if (!failing) warn(`audit file ${path} cannot be written: ${(err as Error).message}`);
        failing = true;
        throw err;
      }
    },
    async close() {
      const old = file;
      file = undefined;
      await old?.handle.close();
    },
    async reopen() {
      if (toStdout) return;
      await reopen();
    },
  };
  return sink;
}

/** The file device factory, with the server's configuration. */
export function fileSinkFactory(config: FileDeviceConfig): AuditSinkFactory {
  return (options) => fileSink(options, config);
}
