// Package mlog stands in for monis.app/mlog v0.0.2, the logging helper the Secrets Store CSI Driver v1.6.0 calls
// from its main and its gRPC server, when that module cannot be downloaded (the Go module proxy of the machine the
// tests run on only serves an allowlist of module hosts, and monis.app is not on it). scripts/csi-driver-binary.sh
// uses it only then, through a go.mod replace in its build copy; every other line of the driver and every other
// dependency is the release's own.
//
// It offers the five names the driver uses, over klog (which the driver sets up itself with klog.InitFlags): text
// output only, since the tests never ask for JSON.
package mlog

import (
	"context"
	"fmt"

	"k8s.io/klog/v2"
)

// Format is the log output format the driver asks for with --log-format-json.
type Format string

const (
	FormatText Format = "text"
	FormatJSON Format = "json"
)

// Setup returns what to run at exit: flushing klog's buffered lines.
func Setup() func() {
	return klog.Flush
}

// ValidateAndSetKlogLevelAndFormatGlobally accepts the level the driver read from klog's own -v flag (klog applies
// it already) and refuses JSON, which this stand-in does not implement, rather than ignoring the flag.
func ValidateAndSetKlogLevelAndFormatGlobally(_ context.Context, level klog.Level, format Format) error {
	if level < 0 {
		return fmt.Errorf("invalid log level %d", level)
	}
	if format != FormatText {
		return fmt.Errorf("log format %q is not available in this build (monis.app/mlog stand-in: text only)", format)
	}
	return nil
}

// Error logs err with msg and any key/value pairs.
func Error(msg string, err error, keysAndValues ...any) {
	klog.ErrorS(err, msg, keysAndValues...)
}

// Fatal logs err and exits with status 1 once klog is flushed.
func Fatal(err error, keysAndValues ...any) {
	klog.ErrorS(err, "fatal error", keysAndValues...)
	klog.FlushAndExit(klog.ExitFlushTimeout, 1)
}
