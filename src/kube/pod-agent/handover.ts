// The agent's state file (config `state_file`): the token and the leases it holds, in a memory volume that only the
// agent containers mount. The init container hands its credentials to the native sidecar through it, so the pod
// keeps one database user instead of two (the init container's would otherwise live, unused, until its TTL); and
// a sidecar that restarts adopts what its previous run held instead of leaving it behind.
// It holds a Cofre token: written with mode 0600, never into a volume an application container mounts.
import { readFile, rm } from 'node:fs/promises';
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

/** The state in `file`, or undefined when there is none or it is not one this agent wrote (then it is ignored). */
export async function readHandover(file: string): Promise<Handover | undefined> {
  let parsed: Partial<Handover>;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8')) as Partial<Handover>;
  } catch {
    return undefined;
  }
  if (
    typeof parsed.token !== 'string' ||
    typeof parsed.ttl !== 'number' ||
    typeof parsed.renewable !== 'boolean' ||
    typeof parsed.leases !== 'object' ||
    parsed.leases === null ||
    !Object.values(parsed.leases).every(isLease)
  )
    return undefined;
  const digests = typeof parsed.digests === 'object' && parsed.digests !== null ? parsed.digests : {};
  return { token: parsed.token, ttl: parsed.ttl, renewable: parsed.renewable, leases: parsed.leases, digests };
}

/**
 * Mode 0600 for the agents' own file. `cofre agent exec` writes 0644: it runs as the application's user, which the
 * sidecar may not be, and every container that can read it mounts the pod's service-account token for Cofre anyway.
 */
export function writeHandover(file: string, state: Handover, mode = 0o600): Promise<void> {
  return writeFileAtomic(file, `${JSON.stringify(state)}\n`, mode);
}

export function removeHandover(file: string): Promise<void> {
  return rm(file, { force: true });
}
