import { open, type FileHandle } from 'node:fs/promises';
import { stateAfter, GENESIS } from '../core/audit-chain.js';
import type { AuditSink } from '../core/audit-broker.js';

const TAIL_BYTES = 256 * 1024;

/** The last complete line of a file, to continue its hash chain after a restart. */
async function lastLine(handle: FileHandle): Promise<string | undefined> {
  const { size } = await handle.stat();
  if (size === 0) return undefined;
  const length = Math.min(size, TAIL_BYTES);
  const buf = Buffer.alloc(length);
  await handle.read(buf, 0, length, size - length);
  const lines = buf
    .toString('utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
  return lines[lines.length - 1];
}

/**
 * The file audit device: appends one JSON line per entry to `file_path`, or to standard output when file_path
 * is "stdout". Writes are handed to the OS before the request proceeds; a failing write fails the request.
 */
export function fileSink(options: Record<string, string>) {
  const path = options.file_path ?? options.path;
  if (!path) throw new Error('file_path is required');
  const mode = options.mode ? parseInt(options.mode, 8) : 0o600;
  let handle: FileHandle | undefined;
  const sink: AuditSink = {
    async open() {
      if (path === 'stdout') return GENESIS;
      handle = await open(path, 'a+', mode);
      return stateAfter(await lastLine(handle));
    },
    async write(line) {
      if (path === 'stdout') {
        await new Promise<void>((resolve, reject) =>
          process.stdout.write(line, (err) => (err ? reject(err) : resolve())),
        );
        return;
      }
      if (!handle) throw new Error('audit file is not open');
      await handle.write(line);
    },
    async close() {
      await handle?.close();
      handle = undefined;
    },
  };
  return sink;
}
