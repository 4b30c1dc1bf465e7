// The CSIDriverProvider service definition for @grpc/grpc-js, from SERVICE_PROTO: used by the provider and by the
// tests and benchmark that play the driver.
import type * as grpc from '@grpc/grpc-js';
import { loadService } from '../grpc-service.js';
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
  return loadService(SERVICE_PROTO, 'v1alpha1', 'CSIDriverProvider');
}
