// The agent's state file (config `state_file`): the token and the leases it holds, in a memory volume that only the
// agent containers mount. The init container hands its credentials to the native sidecar through it, so the pod
// keeps one database user instead of two (the init container's would otherwise live, unused, until its TTL); and
// a sidecar that restarts adopts what its previous run held instead of leaving it behind.
// It holds a Cofre token: written with mode 0600, never into a volume an application container mounts.
// `cofre agent exec` writes the same shape for the sidecar (exec-leases.ts), in a volume of its own.
import { constants } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { writeFileAtomic } from './atomic-write.js';
import type { Lease } from './sources.js';

export interface HeldLease extends Lease {
  /** The TTL first granted, asked for again at each renewal. */
  requested: number;
  /** When it runs out as last granted (ms since the epoch). */
  expiresAt: number;
}

export interface Handover {
  token: string;
  /** The TTL of the token's login, asked for again at each renewal. */
  ttl: number;
  renewable: boolean;
  /** Item name → its lease. */
  leases: Record<string, HeldLease>;
  /** Item name → sha256 of the content last written for it. */
  digests: Record<string, string>;
}

const isLease = (v: unknown): v is HeldLease => {
  const l = v as HeldLease;
  return (
    typeof l === 'object' &&
    l !== null &&
    typeof l.id === 'string' &&
    typeof l.duration === 'number' &&
    typeof l.renewable === 'boolean' &&
    typeof l.requested === 'number' &&
    typeof l.expiresAt === 'number'
  );
};

/** A state file is a token and a few lease ids: anything larger was not written by an agent. */
const MAX_STATE_BYTES = 64 * 1024;
const MAX_LEASES = 64;
const ITEM_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export type ReadOutcome = { state: Handover } | { absent: true } | { refused: string };

/**
 * The state in `file`: absent when there is none, refused (with why, never the content) when it is not one an agent
 * wrote. An exec state file is written by an application container, so it is read as hostile: a symbolic link (to
 * another container's file, or to the agents' own) is not followed, a FIFO or device is not read (O_NONBLOCK: a FIFO
 * would hang the reader), and its size and lease count are bounded.
 */
export async function readHandover(file: string): Promise<ReadOutcome> {
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { absent: true };
    if (code === 'ELOOP') return { refused: 'it is a symbolic link' };
    return { refused: `it cannot be opened (${code ?? (err as Error).message})` };
  }
  let text: string;
  try {
    const info = await handle.stat();
    if (!info.isFile()) return { refused: 'it is not a regular file' };
    if (info.size > MAX_STATE_BYTES) return { refused: `it is larger than ${MAX_STATE_BYTES} bytes` };
    text = await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
  // Read to its end: it may have grown after the size check.
  if (Buffer.byteLength(text) > MAX_STATE_BYTES) return { refused: `it is larger than ${MAX_STATE_BYTES} bytes` };
  let parsed: Partial<Handover>;
  try {
    parsed = JSON.parse(text) as Partial<Handover>;
  } catch {
    return { refused: 'it is not JSON' };
  }
  if (
    typeof parsed !== 'object' ||
    parsed === null ||
    typeof parsed.token !== 'string' ||
    typeof parsed.ttl !== 'number' ||
    typeof parsed.renewable !== 'boolean' ||
    typeof parsed.leases !== 'object' ||
    parsed.leases === null ||
    Array.isArray(parsed.leases) ||
    !Object.values(parsed.leases).every(isLease)
  )
    return { refused: 'it is not an agent state file (token, ttl, renewable, leases)' };
  const names = Object.keys(parsed.leases);
  if (names.length > MAX_LEASES) return { refused: `it lists more than ${MAX_LEASES} leases` };
  if (!names.every((n) => ITEM_NAME.test(n))) return { refused: 'it names an item with a name no item can have' };
  const digests = typeof parsed.digests === 'object' && parsed.digests !== null ? parsed.digests : {};
  return {
    state: { token: parsed.token, ttl: parsed.ttl, renewable: parsed.renewable, leases: parsed.leases, digests },
  };
}

/**
 * Mode 0600 for the agents' own file. `cofre agent exec` writes 0644: it runs as the application's user, which the
 * sidecar may not be (the sidecar, even as root, has no CAP_DAC_OVERRIDE). Only that container and the sidecar see
 * the file (the container mounts its own directory of the exec-state volume), and that container has the pod's
 * service-account token for Cofre anyway.
 */
export function writeHandover(file: string, state: Handover, mode = 0o600): Promise<void> {
  return writeFileAtomic(file, `${JSON.stringify(state)}\n`, mode);
}

export function removeHandover(file: string): Promise<void> {
  return rm(file, { force: true });
}
