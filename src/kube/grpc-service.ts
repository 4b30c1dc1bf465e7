// A gRPC service definition for @grpc/grpc-js from the text of a .proto file (kept as a TypeScript string, since a
// .proto file would not survive the build into dist/): the CSI provider's and the KMS plugin's.
import { chmod } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

/** `service` of proto package `pkg` in `protoText`: its definition (`.service`) and a client constructor. */
export function loadService(protoText: string, pkg: string, service: string): grpc.ServiceClientConstructor {
  const root = protobuf.parse(protoText, { keepCase: true }).root;
  const definition = protoLoader.fromJSON(root.toJSON(), { keepCase: true, defaults: true, longs: Number });
  const loaded = grpc.loadPackageDefinition(definition)[pkg] as grpc.GrpcObject;
  return loaded[service] as grpc.ServiceClientConstructor;
}

/**
 * Binds `server` to a unix socket that only this process's user may dial (0600): the CSI driver and kube-apiserver
 * run as root. The socket is made under a umask of 077, so it is never open to others, not even between its
 * creation and the chmod that follows (with the usual umask of 022 it would start out 0755).
 */
export async function bindPrivateSocket(server: grpc.Server, socket: string): Promise<void> {
  const umask = process.umask(0o077);
  try {
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix:${socket}`, grpc.ServerCredentials.createInsecure(), (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  } finally {
    process.umask(umask);
  }
  await chmod(socket, 0o600);
}
