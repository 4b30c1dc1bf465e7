// Stands in for monis.app/mlog v0.0.2 when building the Secrets Store CSI Driver (scripts/csi-driver-binary.sh) on a
// machine whose Go module proxy does not serve monis.app: see mlog.go.
module monis.app/mlog

go 1.22

require k8s.io/klog/v2 v2.120.1
