// `cofre kms-plugin`'s gRPC server: v2.KeyManagementService on the unix socket kube-apiserver's
// EncryptionConfiguration names (`endpoint: unix:///...`).
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { bindPrivateSocket } from '../grpc-service.js';
import type { PluginSession } from './auth.js';
import { kmsService, type EncryptResponse, type StatusResponse } from './grpc.js';
import type { TransitKek } from './transit.js';

type Log = (level: 'info' | 'warn', msg: string, fields?: object) => void;

export interface KmsServer {
  close(): Promise<void>;
}

export async function startKmsServer(opts: {
  socket: string;
  kek: TransitKek;
  session: PluginSession;
  log: Log;
}): Promise<KmsServer> {
  const { kek, log } = opts;
  let lastKeyId = '';
  await mkdir(path.dirname(opts.socket), { recursive: true });
  // A socket left by a plugin that died: binding over it would fail.
  await rm(opts.socket, { force: true });
  const fail = (rpc: string, done: (err: grpc.ServiceError) => void) => (err: Error) => {
    log('warn', `${rpc} failed`, { error: err.message });
    done(
      Object.assign(new Error(err.message), {
        code: grpc.status.UNAVAILABLE,
        details: err.message,
        metadata: new grpc.Metadata(),
      }),
    );
  };
  const server = new grpc.Server();
  server.addService(kmsService().service, {
    Status: (_call: grpc.ServerUnaryCall<unknown, unknown>, done: grpc.sendUnaryData<StatusResponse>) => {
      kek.latestVersion().then(
        (version) => {
          const keyId = kek.keyId(version);
          if (keyId !== lastKeyId) log('info', 'key id', { key_id: keyId, previous: lastKeyId || undefined });
          lastKeyId = keyId;
          done(null, { version: 'v2', healthz: 'ok', key_id: keyId });
        },
        (err: Error) => {
          // Not a gRPC error: the API server reads healthz, and its kms-providers check fails with this message.
          const why = opts.session.lastError ?? err.message;
          log('warn', 'unhealthy', { error: why });
          done(null, { version: 'v2', healthz: `cofre kms-plugin: ${why}`, key_id: lastKeyId || 'unknown' });
        },
      );
    },
    Encrypt: (
      call: grpc.ServerUnaryCall<{ plaintext: Buffer }, unknown>,
      done: grpc.sendUnaryData<EncryptResponse>,
    ) => {
      kek
        .encrypt(call.request.plaintext)
        .then(
          ({ ciphertext, keyId }) => done(null, { ciphertext, key_id: keyId, annotations: {} }),
          fail('Encrypt', done),
        );
    },
    Decrypt: (
      call: grpc.ServerUnaryCall<{ ciphertext: Buffer }, unknown>,
      done: grpc.sendUnaryData<{ plaintext: Buffer }>,
    ) => {
      kek.decrypt(call.request.ciphertext).then((plaintext) => done(null, { plaintext }), fail('Decrypt', done));
    },
  });
  // Only kube-apiserver (root on the control-plane host) dials it.
  await bindPrivateSocket(server, opts.socket);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => {
          opts.session.stop();
          void rm(opts.socket, { force: true }).finally(resolve);
        });
      }),
  };
}
