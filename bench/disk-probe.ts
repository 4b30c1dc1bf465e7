// A probe of the disk's fsync latency during a benchmark run (bench/vs-openbao.ts). On the virtual disks measured,
// fdatasync stalls now and then for 50 to 370 ms, at the same instant for every file of the device, whoever writes;
// a durable write waits for its fsync, so every request in flight then waits with it, and a round's p99 can be such
// a stall rather than the server's work (bench/README.md, "The disk's stalls"). The probe rewrites one 4 KiB block
// of a file of its own and syncs it every 20 ms: the file never changes size, so fdatasync flushes that block alone
// and adds no journal commit, which keeps its own load on the disk small (about 200 KiB/s).
import { open } from 'node:fs/promises';
import { join } from 'node:path';

/** What the probe saw: how many syncs, how many of them took longer than STALL_MS, and the longest. */
export interface DiskProbeResult {
  syncs: number;
  stalls: number;
  longestMs: number;
}

export const STALL_MS = 50;
const INTERVAL_MS = 20;

/** Starts probing in `dir` (on the servers' disk); stop() ends it and tells what it saw. */
export async function startDiskProbe(dir: string): Promise<{ stop(): Promise<DiskProbeResult> }> {
  const file = await open(join(dir, 'disk-probe'), 'w');
  const block = Buffer.alloc(4096, 1);
  await file.write(block, 0, block.length, 0);
  await file.datasync();
  const result: DiskProbeResult = { syncs: 0, stalls: 0, longestMs: 0 };
  let running = true;
  const loop = (async () => {
    while (running) {
      await file.write(block, 0, block.length, 0);
      const started = performance.now();
      await file.datasync();
      const ms = performance.now() - started;
      result.syncs++;
      if (ms > STALL_MS) result.stalls++;
      result.longestMs = Math.max(result.longestMs, ms);
      await new Promise((resolve) => setTimeout(resolve, INTERVAL_MS));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      await file.close();
      return result;
    },
  };
}
