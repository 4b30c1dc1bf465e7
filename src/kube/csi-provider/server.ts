// `cofre csi-provider`'s gRPC server: the CSIDriverProvider service on the unix socket `cofre.sock` in the
// driver's provider directory, where the Secrets Store CSI Driver dials providers by name.
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { bindPrivateSocket } from '../grpc-service.js';
import { providerService, type MountRequestMessage, type MountResponseMessage } from './grpc.js';
import type { Mounter } from './mount.js';
import { MountError } from './mount.js';
import { ParameterError } from './params.js';

export const SOCKET_NAME = 'cofre.sock';
export const RUNTIME_NAME = 'cofre';

export interface ProviderServer {
  socket: string;
  close(): Promise<void>;
}

export async function startProviderServer(opts: {
  providerDir: string;
  mounter: Mounter;
  version: string;
  log: (level: 'info' | 'warn', msg: string, fields?: object) => void;
}): Promise<ProviderServer> {
  const socket = path.join(opts.providerDir, SOCKET_NAME);
  await mkdir(opts.providerDir, { recursive: true });
  // A socket left by a provider that died: binding over it would fail.
  await rm(socket, { force: true });
  const server = new grpc.Server();
  server.addService(providerService().service, {
    Version: (
      call: grpc.ServerUnaryCall<{ version: string }, unknown>,
      done: grpc.sendUnaryData<{ version: string; runtime_name: string; runtime_version: string }>,
    ) => done(null, { version: call.request.version, runtime_name: RUNTIME_NAME, runtime_version: opts.version }),
    Mount: (
      call: grpc.ServerUnaryCall<MountRequestMessage, unknown>,
      done: grpc.sendUnaryData<MountResponseMessage>,
    ) => {
      opts.mounter.mount(call.request).then(
        (res) => done(null, res),
        (err: Error) => {
          const known = err instanceof MountError || err instanceof ParameterError;
          opts.log('warn', 'mount refused', { error: err.message });
          // The driver shows this message in the pod's events: it names parameters, objects and paths, never values.
          done({
            code: known ? grpc.status.INVALID_ARGUMENT : grpc.status.INTERNAL,
            details: known ? err.message : `cofre csi-provider: ${err.message}`,
          });
        },
      );
    },
  });
  // Only the driver (root on the node) dials it.
  await bindPrivateSocket(server, socket);
  return {
    socket,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => {
          void rm(socket, { force: true }).finally(resolve);
        });
      }),
  };
}
