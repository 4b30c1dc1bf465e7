// The v2.KeyManagementService definition for @grpc/grpc-js, from KMS_PROTO: used by the plugin and by the tests
// that play kube-apiserver.
import type * as grpc from '@grpc/grpc-js';
import { loadService } from '../grpc-service.js';
import { KMS_PROTO } from './service-proto.js';

export interface StatusResponse {
  version: string;
  healthz: string;
  key_id: string;
}

export interface EncryptResponse {
  ciphertext: Buffer;
  key_id: string;
  annotations: Record<string, Buffer>;
}

export function kmsService(): grpc.ServiceClientConstructor {
  return loadService(KMS_PROTO, 'v2', 'KeyManagementService');
}
