/**
 * One server thread of `cofre server --workers N` (src/workers/primary.ts): a whole server (core, caches, HTTP
 * listener on the shared port) on the shared SQLite store, whose seal, unseal and audit go through the primary.
 */
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import type { Cofre } from '../app.js';
import type { Core } from '../core/core.js';
import { startServer, type ServerFlags } from '../cli/server.js';
import { type CeremonyCall, runCeremonyCall } from '../core/key-ceremonies.js';
import { shareKeyLocksAcrossThreads } from '../core/key-locks.js';
import { SqliteThreadStorage } from '../storage/sqlite-threads.js';
import { relayedAuditDevices, threadFileDevices } from './audit-relay.js';
import { rpc } from './rpc.js';
import { forwardingWrites, serveForwardedWrites, type ServeRequest } from './write-forwarding.js';
import { handleRequest } from '../core/request/index.js';

export interface ServerThreadData {
  flags: ServerFlags;
  index: number;
  threads: number;
  file: string;
  commitPort: MessagePort;
  /**
   * The first thread's ends of the ports over which the others hand it their writes; another thread's one end
   * of its own (write-forwarding.ts).
   */
  writePorts: MessagePort[];
  /** Off (COFRE_FORWARD_WRITES=off): every thread serves its own writes. */
  forwardWrites: boolean;
  changeCounter: SharedArrayBuffer;
  lockSlots: SharedArrayBuffer;
  /** The port the first thread listens on; unset for the first thread. */
  port?: number;
}

const parent = parentPort;
if (!parent) throw new Error('server-thread runs as a worker thread');
const data = workerData as ServerThreadData;

// Set once the server is up; the primary's calls before that (none are sent) would find nothing to act on.
const running: { cofre?: Cofre } = {};
const primary = rpc(parent, {
  seal: () => running.cofre?.core.sealByOperator(true),
  unsealKey: ({ key, migrate }: { key: Uint8Array | 'reset'; migrate: boolean }) =>
    key === 'reset'
      ? running.cofre?.core.resetUnseal(true)
      : running.cofre?.core.submitUnsealKey(Buffer.from(key), migrate, true),
  ceremony: (call: CeremonyCall) => {
    if (!running.cofre) throw new Error('the first server thread is not running');
    return runCeremonyCall(running.cofre.core.ceremonies, call);
  },
  close: async () => {
    await running.cofre?.close();
    for (const port of data.writePorts) port.close();
    parent.close();
  },
});

const physical = new SqliteThreadStorage({
  file: data.file,
  port: data.commitPort,
  changeCounter: data.changeCounter,
  index: data.index,
  threads: data.threads,
});
shareKeyLocksAcrossThreads(data.lockSlots, data.index, () => physical.catchUp());

const started = await startServer(data.flags, {
  physical,
  peers: {
    sealed: () => primary.call('peers.sealed'),
    unsealKey: (key, migrate) =>
      primary.call('peers.unsealKey', { key: key === 'reset' ? key : new Uint8Array(key), migrate }),
    // The first thread holds the generate-root and rekey attempts; the others forward to it.
    ...(data.index === 0 ? {} : { ceremony: (call: CeremonyCall) => primary.call('peers.ceremony', call) }),
  },
  auditDevices: { ...relayedAuditDevices(() => primary, ['socket']), file: threadFileDevices(() => primary) },
  ...(data.port === undefined ? {} : { port: data.port }),
  ...(data.index === 0 || !data.forwardWrites
    ? {}
    : {
        routeRequests: (core: Core, local: ServeRequest, forwarded: () => void) =>
          forwardingWrites(core, data.writePorts[0]!, local, forwarded),
      }),
});
if (data.index === 0 && data.forwardWrites) {
  const { core, http } = started.cofre;
  serveForwardedWrites(
    data.writePorts,
    (req) => handleRequest(core, req),
    (err, req) => http.log.error({ err, requestId: req.requestId }, 'internal error in a write from another thread'),
  );
}
running.cofre = started.cofre;
await primary.call('started', { announce: started.announce, port: started.port });
