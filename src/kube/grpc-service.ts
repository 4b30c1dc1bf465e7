// A gRPC service definition for @grpc/grpc-js from the text of a .proto file (kept as a TypeScript string, since a
// .proto file would not survive the build into dist/): the CSI provider's and the KMS plugin's.
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
