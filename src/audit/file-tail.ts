import type { FileHandle } from 'node:fs/promises';

/** How many bytes from the end of the file one read-back looks at, at most. */
export const TAIL_WINDOW_BYTES = 1024 * 1024;
const CHUNK = 64 * 1024;

export interface Tail {
  /** Complete lines, newest first. */
  lines: string[];
  /**
   * The window ended before `limit` lines were found while the file goes on before it: older lines exist but
   * were not read (a few very large entries fill the window).
   */
  truncated: boolean;
}

/**
 * The last `limit` complete lines of an append-only file, read backwards a chunk at a time from `size`, within
 * `windowBytes`. A last line without its newline is a write in progress (or a torn one) and is left out; so is a
 * line that starts before the window, since only part of it was read.
 */
export async function lastLines(
  handle: FileHandle,
  size: number,
  limit: number,
  windowBytes = TAIL_WINDOW_BYTES,
): Promise<Tail> {
  const floor = Math.max(0, size - windowBytes);
  const parts: Buffer[] = [];
  let pos = size;
  let newlines = 0;
  // One newline more than lines wanted: the line before the oldest one wanted must have ended too.
  while (pos > floor && newlines <= limit) {
    const length = Math.min(CHUNK, pos - floor);
    const buf = Buffer.alloc(length);
    await handle.read(buf, 0, length, pos - length);
    pos -= length;
    parts.unshift(buf);
    for (const byte of buf) if (byte === 0x0a) newlines++;
  }
  const text = Buffer.concat(parts).toString('utf8');
  const pieces = text.split('\n');
  pieces.pop(); // what follows the last newline: "" or a line still being written
  // The first piece is whole only when the read reached the start of the file.
  if (pos > 0) pieces.shift();
  const lines = pieces.filter((l) => l !== '').reverse();
  return { lines: lines.slice(0, limit), truncated: lines.length < limit && pos > 0 };
}
