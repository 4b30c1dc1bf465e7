import type { FastifyInstance } from 'fastify';
import { auditDeviceFactories } from './audit/index.js';
import type { AuditSinkFactory } from './core/audit-broker.js';
import { authMethods } from './auth/index.js';
import type { PathRecord } from './core/backend.js';
import { Core, type ServerPeers } from './core/core.js';
import { MountTable, type MountEntry } from './core/mount-table.js';
import type { Seal } from './core/seal.js';
import { systemBackend } from './core/sys/index.js';
import { StorageView } from './core/storage-view.js';
import { secretEngines } from './engines/index.js';
import {
  createMetrics,
  metricsResponse,
  registerForwardedWrites,
  registerLeaseMetrics,
  registerStorageMetrics,
} from './http/metrics.js';
import { openApiDocument } from './http/openapi.js';
import { buildHttpServer, DEFAULT_BODY_LIMIT } from './http/server.js';
import type { UiOptions } from './http/ui.js';
import { ShamirSeal } from './seal/shamir.js';
import { isSharedStorage } from './core/storage.js';
import { handleRequest } from './core/request/index.js';
import type { ServeRequest } from './workers/write-forwarding.js';
import { openStorage, type StorageAdapter, type StorageConfig } from './storage/open.js';

export type { StorageAdapter, StorageConfig };

export interface CofreOptions {
  storage: StorageConfig;
  /** This node's address as other nodes and clients reach it (sys/leader, sys/ha-status). */
  apiAddr?: string;
  seal?: Seal;
  /** The seal a `-migrate` unseal migrates away from; the Shamir seal when unset (see CoreOptions). */
  migrateFrom?: Seal;
  logLevel?: string;
  /** Where log lines go (stdout when unset); dev mode makes them readable. */
  logStream?: NodeJS.WritableStream;
  /** Log every answered request at info (dev mode). */
  requestLog?: boolean;
  bodyLimit?: number;
  tls?: { cert: Buffer; key: Buffer };
  /** Mounts a new store starts with. */
  defaultMounts?: MountEntry[];
  /** `audit_file_path_prefix`: file audit devices may only write under this directory. */
  auditFilePathPrefix?: string;
  /** Serve the web UI at /ui/ (dev mode, or `ui = true` in the configuration file). */
  ui?: UiOptions;
  /** Names browsers may reach this server by besides IP addresses and localhost (src/http/browser-hosts.ts). */
  browserHosts?: readonly string[];
  /** Check every request's Host, not only browsers' (a dev server: its root token may be well known). */
  checkEveryHost?: boolean;
  /** An already opened store, instead of opening `storage` (a server thread's view of a shared file). */
  physical?: StorageAdapter;
  /** The other server threads of this process (src/workers/). */
  peers?: ServerPeers;
  /** Replaces the audit device types (a server thread relays its devices' lines to the primary thread). */
  auditDevices?: Record<string, AuditSinkFactory>;
  /** How often an event stream with nothing to say writes a heartbeat (15 s when unset; tests shorten it). */
  streamHeartbeatMs?: number;
  /** Where requests are served, given this server's own core (a server thread hands writes to the first one). */
  routeRequests?: (core: Core, local: ServeRequest, forwarded: () => void) => ServeRequest;
}

export interface Cofre {
  core: Core;
  http: FastifyInstance;
  /** The storage adapter, for diagnostics (its stats show what reached the store). */
  storage: StorageAdapter;
  close(): Promise<void>;
}

/** Paths of the system backend that belong to the HTTP layer: metrics and the OpenAPI document. */
function httpSysPaths(core: Core, metrics: ReturnType<typeof createMetrics>): PathRecord[] {
  return [
    {
      pattern: 'metrics',
      summary: 'Telemetry: JSON in Vault’s shape (Gauges, Counters, Samples), or Prometheus text (format=prometheus).',
      noAudit: true,
      fields: { format: { type: 'string', description: '"" (JSON, the default) or "prometheus".' } },
      operations: { read: (req) => metricsResponse(metrics.registry, (req.data.format as string | undefined) ?? '') },
    },
    {
      pattern: 'internal/specs/openapi',
      summary: 'The OpenAPI document of every mounted path.',
      operations: { read: async () => ({ rawBody: openApiDocument(core.mounts.all()) }) },
    },
  ];
}

/** Builds a Cofre server: storage, seal, core with its backends, and the HTTP server (not yet listening). */
export async function createCofre(opts: CofreOptions): Promise<Cofre> {
  const physical = opts.physical ?? (await openStorage(opts.storage));
  const metrics = createMetrics();
  const core: Core = new Core({
    physical,
    seal: opts.seal ?? new ShamirSeal(),
    migrateFrom: opts.migrateFrom ?? new ShamirSeal(),
    factories: { mounts: secretEngines, auth: authMethods(() => core) },
    auditDevices: opts.auditDevices ?? auditDeviceFactories({ file: { pathPrefix: opts.auditFilePathPrefix } }),
    defaultMounts: opts.defaultMounts ?? [],
    ...(opts.peers ? { peers: opts.peers } : {}),
  });
  registerLeaseMetrics(metrics.registry, () => core.expiration.snapshot());
  registerStorageMetrics(metrics.registry, physical);
  const sys = systemBackend(core, opts.storage.type);
  sys.paths.push(...httpSysPaths(core, metrics));
  core.mounts.addBuiltin(
    'sys/',
    MountTable.newEntry('sys', 'system', { description: 'system endpoints' }),
    sys,
    new StorageView(core.barrier, 'sys/'),
  );
  if (isSharedStorage(physical)) await core.joinCluster(physical, opts.apiAddr ?? '');
  const http = await buildHttpServer(core, {
    logLevel: opts.logLevel ?? 'info',
    ...(opts.logStream ? { logStream: opts.logStream } : {}),
    requestLog: opts.requestLog ?? false,
    bodyLimit: opts.bodyLimit ?? DEFAULT_BODY_LIMIT,
    metrics,
    ...(opts.tls ? { tls: opts.tls } : {}),
    ...(opts.ui ? { ui: opts.ui } : {}),
    ...(opts.browserHosts ? { browserHosts: opts.browserHosts } : {}),
    ...(opts.checkEveryHost ? { checkEveryHost: true } : {}),
    ...(opts.streamHeartbeatMs !== undefined ? { streamHeartbeatMs: opts.streamHeartbeatMs } : {}),
    ...(opts.routeRequests
      ? {
          serveRequest: opts.routeRequests(
            core,
            (req) => handleRequest(core, req),
            registerForwardedWrites(metrics.registry),
          ),
        }
      : {}),
  });
  core.logTo(http.log);
  return {
    core,
    http,
    storage: physical,
    async close() {
      await http.close();
      await core.sealAfterDraining();
      await physical.close();
      await core.seal.close?.();
      await opts.migrateFrom?.close?.();
    },
  };
}

export const devDefaultMounts = (): MountEntry[] => [
  MountTable.newEntry('secret', 'kv', { description: 'key/value secret storage', options: { version: '2' } }),
];
