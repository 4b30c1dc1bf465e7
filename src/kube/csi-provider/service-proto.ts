// The provider's gRPC interface (proto3), loaded from this text at start: a .proto file would not survive the
// TypeScript build into dist/. Field names and numbers are the wire contract with the Secrets Store CSI Driver
// (sigs.k8s.io/secrets-store-csi-driver v1.6.0, provider/v1alpha1/service.proto).
export const SERVICE_PROTO = `
// The gRPC interface between the Secrets Store CSI Driver and a provider: package v1alpha1, service
// CSIDriverProvider, as in sigs.k8s.io/secrets-store-csi-driver v1.6.0 (provider/v1alpha1/service.proto). Field
// names and numbers are the wire contract with the driver; only these comments are Cofre's.
syntax = "proto3";

package v1alpha1;

service CSIDriverProvider {
  // The provider's name and version, and the driver's version echoed back.
  rpc Version(VersionRequest) returns (VersionResponse) {}
  // The files of one volume of one pod, and the version of each object in them.
  rpc Mount(MountRequest) returns (MountResponse) {}
}

message VersionRequest {
  string version = 1;
}

message VersionResponse {
  string version = 1;
  string runtime_name = 2;
  string runtime_version = 3;
}

message MountRequest {
  // JSON: the SecretProviderClass's parameters plus the driver's csi.storage.k8s.io/* attributes.
  string attributes = 1;
  // JSON: the data of the volume's nodePublishSecretRef Secret.
  string secrets = 2;
  string target_path = 3;
  // JSON: the default file mode, a decimal number.
  string permission = 4;
  // What the pod has now (rotation reconciles send it).
  repeated ObjectVersion current_object_version = 5;
}

message MountResponse {
  repeated ObjectVersion object_version = 1;
  Error error = 2;
  // Every file of the volume; the driver writes them.
  repeated File files = 3;
}

message File {
  // Relative to the volume, without "..".
  string path = 1;
  // Decimal, 0 to 511.
  int32 mode = 2;
  bytes contents = 3;
}

message ObjectVersion {
  string id = 1;
  string version = 2;
}

message Error {
  string code = 1;
}
`;
