import type { PathRecord, Request, Response } from '../backend.js';
import type { Core } from '../core.js';
import { badRequest } from '../errors.js';
import { rawBodyOf } from '../raw-body.js';
import type { SealConfig } from '../seal.js';
import { restoreSnapshot, snapshotStream, SnapshotError, type SnapshotInfo } from '../snapshot.js';
import { COPY_IN_PROGRESS_KEY, CopyUnderWayError, ROOT_KEY_KEY } from '../store-copy.js';

/**
 * Refuses a snapshot this server could not use, before anything is written. Without force, the snapshot must have
 * been taken with this server's current unseal keys (the same wrapped root key), as Vault's snapshot restore
 * requires; force takes a snapshot from any store of the same seal type, whose keys then unseal this server.
 */
/**
 * An unsealed node records itself every 2 s (storage/postgres-leader.ts), and pauses for 10 s after it stepped down
 * (core.ts, STEP_DOWN_SLEEP_MS): one seen within this is taken as serving.
 */
const LIVE_NODE_MS = 15_000;

async function checkRestorable(core: Core, info: SnapshotInfo, force: boolean): Promise<void> {
  // Another node that serves meanwhile would write into the store being restored (its requests, its lease expiry
  // as leader) and answer from caches of the store before it.
  // Refused before this server seals itself for the restore: another restore is writing the store now.
  if (await core.physical.get(COPY_IN_PROGRESS_KEY)) {
    throw badRequest('another restore (or migration) is writing this store now');
  }
  const others = await core.otherLiveNodes(LIVE_NODE_MS);
  if (others.length > 0) {
    throw badRequest(
      `other nodes of this cluster are unsealed (${others.map((node) => node.apiAddr || node.nodeId).join(', ')}): ` +
        `seal (sys/seal) or stop them, and restore ${LIVE_NODE_MS / 1000} s later; a restore while they serve would ` +
        'mix their writes into the restored store',
    );
  }
  if (!info.sealConfig || !info.rootKey || !info.hasKeyring) {
    throw badRequest('the snapshot is not of an initialized store (no seal configuration, root key or keyring)');
  }
  let config: SealConfig;
  try {
    config = JSON.parse(info.sealConfig.toString('utf8')) as SealConfig;
  } catch {
    throw badRequest("the snapshot's seal configuration is not JSON");
  }
  if (config.type !== core.seal.type) {
    throw badRequest(
      `the snapshot's store is sealed by a "${config.type}" seal and this server uses "${core.seal.type}": ` +
        'it could never be unsealed here',
    );
  }
  const current = await core.physical.get(ROOT_KEY_KEY);
  if (!force && (!current || !info.rootKey.equals(current))) {
    throw badRequest(
      "the snapshot was taken with other unseal keys than this server's; restoring it replaces them with the " +
        "snapshot's keys. Restore it with storage/snapshot-force (cofre operator snapshot restore -force) if that is meant",
    );
  }
}

export function snapshotPaths(core: Core): PathRecord[] {
  let restoring = false;

  const save = async (): Promise<Response> => ({
    rawBody: snapshotStream(core.physical),
    contentType: 'application/octet-stream',
    // What the audit log records of this response (the body is the stream, which it never reads).
    data: {},
  });

  const restore =
    (force: boolean) =>
    async (req: Request): Promise<Response | undefined> => {
      const body = rawBodyOf(req.raw);
      if (!body) throw badRequest('send the snapshot as the request body, with Content-Type: application/octet-stream');
      if (restoring) throw badRequest('a snapshot restore is already running');
      restoring = true;
      let sealed = false;
      try {
        // The live store is never empty: force at this level; this path's own checks run in beforeWrite.
        await restoreSnapshot(body, core.physical, {
          force: true,
          beforeWrite: async (info) => {
            await checkRestorable(core, info, force);
            // Sealed before the first write: no request or background job writes (or caches) meanwhile, and the
            // restored store may have other keys, which only the operator holds.
            await core.sealByOperator();
            sealed = true;
          },
        });
      } catch (err) {
        if (err instanceof SnapshotError || err instanceof CopyUnderWayError) throw badRequest(err.message);
        throw err;
      } finally {
        restoring = false;
        if (sealed) core.forgetSealConfig();
      }
      // A seal that unwraps by itself (PKCS#11) unseals the restored store at once, as on start. If it cannot, the
      // restore stands and the server stays sealed, saying why (never with the PIN, which no seal error holds).
      if (core.seal.autoUnseal) {
        try {
          await core.unsealOnStart();
        } catch (err) {
          return {
            warnings: [`the snapshot was restored, but the seal could not unseal it: ${(err as Error).message}`],
          };
        }
      }
      return undefined;
    };

  return [
    {
      pattern: 'storage/snapshot',
      summary:
        'Reads a snapshot of the whole store (encrypted entries only, gzip), or restores one sent as ' +
        "application/octet-stream (taken with this server's unseal keys); the server seals after a restore (a " +
        'PKCS#11 seal unseals it again at once).',
      sudo: true,
      drainsRequests: true,
      operations: { read: save, update: restore(false) },
    },
    {
      pattern: 'storage/snapshot-force',
      summary:
        "Restores a snapshot taken with other unseal keys: the server seals, and unseals with the snapshot's keys.",
      sudo: true,
      drainsRequests: true,
      operations: { update: restore(true) },
    },
  ];
}
