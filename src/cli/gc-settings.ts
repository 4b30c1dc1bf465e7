/**
 * V8's garbage collector as a server that allocates a lot outside its heap wants it. Set first thing in `cofre
 * server`, before any other thread runs (V8's flags are the process's).
 *
 * Each request allocates Buffers, whose memory V8 counts apart from its heap: AES-GCM output, socket reads, the
 * PostgreSQL client's messages. By default V8 starts a full collection whenever that memory has grown by 64 MB since
 * the last one, whatever the heap holds. A PostgreSQL node at 3 k durable writes/s allocates about 50 MB of it a
 * second, so it ran a full collection every second, each pausing the node's requests in flight for 10-35 ms: they
 * were the write p99 (bench/README.md, "Full collections started by Buffers"). Counted with the heap instead, that
 * memory starts a collection only when heap and Buffers together have grown past three times what was live after
 * the last one: every few seconds instead of every second. The cost is memory: about a third more resident under
 * write load.
 */
import { setFlagsFromString } from 'node:v8';
import { envSwitch } from './env-switch.js';

/** Counts external memory (Buffers) in V8's global limit; V8 13.6 (Node.js 24) has it, 12.4 (Node.js 22) not. */
const EXTERNAL_IN_GLOBAL_LIMIT = '--external-memory-accounted-in-global-limit';
/** The heap (and with the flag above, Buffers) may grow to three times what was live before a full collection. */
const HEAP_GROWING = '--heap-growing-percent=200';

export const SERVER_GC_FLAGS: readonly string[] = [EXTERNAL_IN_GLOBAL_LIMIT, HEAP_GROWING];

/** `COFRE_GC_FLAGS=off` in the server's environment: V8's defaults (for containers, whose command is fixed). */
export const GC_FLAGS_ENV = 'COFRE_GC_FLAGS';

/**
 * Whether these flags are known to do what was measured on this V8: 13.x from 13.6 (Node.js 24). An unknown flag
 * only prints an error, but a later V8 may rename, drop or make the default of an experimental flag like the
 * first, so a newer major is left alone until measured (the test of this file fails on one that still lists both).
 */
export function knowsServerGcFlags(v8Version: string = process.versions.v8): boolean {
  const [major = 0, minor = 0] = v8Version.split('.').map(Number);
  return major === 13 && minor >= 6;
}

/**
 * The flags of SERVER_GC_FLAGS to set: none on a V8 not measured with them (Node.js 22: nothing changes) or when
 * `COFRE_GC_FLAGS=off` (any value but on or off is refused), and not one that the command line already sets either
 * way (`node --no-external-memory-accounted-in-global-limit …/cli/main.js`): an operator's choice wins.
 */
export function serverGcFlags(execArgv: readonly string[], v8Version: string, env: NodeJS.ProcessEnv = {}): string[] {
  const setting = envSwitch(GC_FLAGS_ENV, env);
  if (!knowsServerGcFlags(v8Version) || setting === 'off') return [];
  const given = new Set(execArgv.map(flagName));
  return SERVER_GC_FLAGS.filter((flag) => !given.has(flagName(flag)));
}

/** Sets serverGcFlags() for this process; returns them. */
export function applyServerGcFlags(): string[] {
  const flags = serverGcFlags(process.execArgv, process.versions.v8, process.env);
  for (const flag of flags) setFlagsFromString(flag);
  return flags;
}

/**
 * `--no-heap_growing-percent=5` → `heap-growing-percent`: V8 reads `_` as `-`, and `--no-x` and `--nox` as x off.
 * Only ever compared with the names above, none of which starts with "no".
 */
function flagName(arg: string): string {
  return arg.replace(/^--?/, '').replace(/=.*$/, '').replaceAll('_', '-').replace(/^no-?/, '');
}
