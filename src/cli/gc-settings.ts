/**
 * V8's garbage collector as a server that allocates a lot outside its heap wants it. Set before the server's
 * threads start: worker threads take V8's flags when they are created.
 *
 * Each request allocates Buffers, whose memory V8 counts apart from its heap: AES-GCM output, socket reads, the
 * PostgreSQL client's messages. By default V8 starts a full collection whenever that memory has grown by 64 MB since
 * the last one, whatever the heap holds. A PostgreSQL node at 3 k durable writes/s allocates about 50 MB of it a
 * second, so it ran a full collection every second, each pausing the node's requests in flight for 10-35 ms: they
 * were the write p99 (bench/README.md, "Full collections started by Buffers"). Counted with the heap instead, that
 * memory starts a collection only when heap and Buffers together have grown past three times what was live after
 * the last one: a few a minute. The cost is memory: about a third more resident under write load.
 */
import { setFlagsFromString } from 'node:v8';

/** Counts external memory (Buffers) in V8's global limit; V8 13.6 (Node.js 24) has it, 12.4 (Node.js 22) not. */
const EXTERNAL_IN_GLOBAL_LIMIT = '--external-memory-accounted-in-global-limit';
/** The heap (and with the flag above, Buffers) may grow to three times what was live before a full collection. */
const HEAP_GROWING = '--heap-growing-percent=200';

export const SERVER_GC_FLAGS: readonly string[] = [EXTERNAL_IN_GLOBAL_LIMIT, HEAP_GROWING];

/** Whether V8 of this version knows every flag of SERVER_GC_FLAGS (an unknown flag only prints an error). */
export function knowsServerGcFlags(v8Version: string = process.versions.v8): boolean {
  const [major = 0, minor = 0] = v8Version.split('.').map(Number);
  return major > 13 || (major === 13 && minor >= 6);
}

/**
 * The flags of SERVER_GC_FLAGS to set: none on a V8 that lacks them (Node.js 22: nothing changes), and not one that
 * the command line already sets either way (`node --no-external-memory-accounted-in-global-limit dist/cli/main.js`):
 * an operator's choice wins.
 */
export function serverGcFlags(execArgv: readonly string[], v8Version: string): string[] {
  if (!knowsServerGcFlags(v8Version)) return [];
  const given = new Set(execArgv.map(flagName));
  return SERVER_GC_FLAGS.filter((flag) => !given.has(flagName(flag)));
}

/** Sets serverGcFlags() for this process; returns them. */
export function applyServerGcFlags(): string[] {
  const flags = serverGcFlags(process.execArgv, process.versions.v8);
  for (const flag of flags) setFlagsFromString(flag);
  return flags;
}

/** `--no-heap_growing-percent=5` → `heap-growing-percent`: V8 reads `_` as `-` and `--no-x` as x off. */
function flagName(arg: string): string {
  return arg.replace(/^--?/, '').replace(/=.*$/, '').replaceAll('_', '-').replace(/^no-/, '');
}
