// The CSIDriverProvider service definition for @grpc/grpc-js, from SERVICE_PROTO: used by the provider and by the
// tests and benchmark that play the driver.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { SERVICE_PROTO } from './service-proto.js';

export interface ObjectVersion {
  id: string;
  version: string;
}

export interface MountRequestMessage {
  attributes: string;
  secrets: string;
  target_path: string;
  permission: string;
  current_object_version: ObjectVersion[];
}

export interface FileMessage {
  path: string;
  mode: number;
  contents: Buffer;
}

export interface MountResponseMessage {
  object_version: ObjectVersion[];
  error?: { code: string } | null;
  files: FileMessage[];
}

/** The loaded `v1alpha1.CSIDriverProvider` service: its definition, and a client constructor. */
export function providerService(): grpc.ServiceClientConstructor {
  const root = protobuf.parse(SERVICE_PROTO, { keepCase: true }).root;
  const definition = protoLoader.fromJSON(root.toJSON(), { keepCase: true, defaults: true, longs: Number });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    v1alpha1: { CSIDriverProvider: grpc.ServiceClientConstructor };
  };
  return pkg.v1alpha1.CSIDriverProvider;
}
