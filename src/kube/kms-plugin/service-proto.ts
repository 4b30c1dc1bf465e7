// The KMS v2 plugin interface (proto3) that kube-apiserver dials: package v2, service KeyManagementService, as in
// k8s.io/kms v0.34 (apis/v2/api.proto). Loaded from this text at start (a .proto file would not survive the build
// into dist/). Field names and numbers are the wire contract; only these comments are Cofre's.
export const KMS_PROTO = `
syntax = "proto3";

package v2;

service KeyManagementService {
  // Polled by the API server: the plugin's health and the key new data is encrypted with.
  rpc Status(StatusRequest) returns (StatusResponse) {}
  rpc Decrypt(DecryptRequest) returns (DecryptResponse) {}
  rpc Encrypt(EncryptRequest) returns (EncryptResponse) {}
}

message StatusRequest {}

message StatusResponse {
  // "v2".
  string version = 1;
  // "ok", or why not (the API server's kms-providers health check shows it).
  string healthz = 2;
  // The current write key; when it changes, the API server encrypts new data under it.
  string key_id = 3;
}

message DecryptRequest {
  bytes ciphertext = 1;
  string uid = 2;
  // The key_id the data was encrypted under.
  string key_id = 3;
  map<string, bytes> annotations = 4;
}

message DecryptResponse {
  bytes plaintext = 1;
}

message EncryptRequest {
  bytes plaintext = 1;
  string uid = 2;
}

message EncryptResponse {
  bytes ciphertext = 1;
  string key_id = 2;
  map<string, bytes> annotations = 3;
}
`;
