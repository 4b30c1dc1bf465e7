#!/usr/bin/env bash
# Prints the path of the Secrets Store CSI Driver's node plugin (cmd/secrets-store-csi-driver of the Go module
# sigs.k8s.io/secrets-store-csi-driver) for test/csi-driver.test.ts, building it once into
# ${COFRE_CACHE_DIR:-$HOME/.cache/cofre}/csi-driver/$DRIVER_VERSION (a few minutes on 2 cores the first time, since
# it pulls in client-go and controller-runtime; nothing afterwards).
#
# It builds inside a copy of the module's own source, with its own go.mod and go.sum, so the binary has exactly the
# dependency versions the release was tested with; `go install ...@v1.6.0` would do the same but first asks the
# module proxy for the module's version list (to look for a deprecation), which a proxy with a host allowlist, like
# our development machine's, answers with 403.
# Beside the binary it keeps the release's deploy/ manifests (CRDs, RBAC, CSIDriver) and the CSI spec's csi.proto.
# Everything but the final path goes to stderr, so callers can do bin=$(bash scripts/csi-driver-binary.sh).
set -euo pipefail
# The Go toolchain may be installed without being on PATH (e.g. under CI's environment).
PATH="$PATH:/usr/local/go/bin:$HOME/go/bin"

DRIVER_MODULE=sigs.k8s.io/secrets-store-csi-driver
DRIVER_VERSION=v1.6.0

here=$(cd "$(dirname "$0")" && pwd)

log() { echo "csi-driver-binary: $*" >&2; }

cache="${COFRE_CACHE_DIR:-$HOME/.cache/cofre}"
out="$cache/csi-driver/$DRIVER_VERSION"
bin="$out/secrets-store-csi-driver"
mkdir -p "$out"

build() {
  command -v go >/dev/null || {
    log "the Go toolchain is needed to build the Secrets Store CSI Driver (https://go.dev/dl/)"
    exit 1
  }
  local start=$SECONDS work
  work=$(mktemp -d "$out/.build.XXXXXX")
  # Starts a log line every 30 s, since go build is silent for minutes; stdout to /dev/null because the caller
  # reads our stdout with $(...), which would otherwise wait for this loop.
  (while sleep 30; do log "      ... still building ($((SECONDS - start)) s)"; done) >/dev/null &
  # shellcheck disable=SC2064 # expand now: both are local to this function
  trap "kill $! 2>/dev/null || true; chmod -R u+w '$work'; rm -rf '$work'" EXIT

  log "building $DRIVER_MODULE $DRIVER_VERSION once into $out (a few minutes on 2 cores the first time)"
  log "[1/3] downloading $DRIVER_MODULE@$DRIVER_VERSION"
  local info src commit
  info=$(go mod download -json "$DRIVER_MODULE@$DRIVER_VERSION")
  src=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$info")
  # The release's commit, which its Makefile stamps into the binary as Vcs.
  commit=$(sed -n 's/^[[:space:]]*"Hash": "\(.*\)",\{0,1\}$/\1/p' <<<"$info")
  [ -f "$src/go.mod" ] || {
    log "go mod download gave no source directory for $DRIVER_MODULE@$DRIVER_VERSION"
    exit 1
  }
  # The module cache is read-only; a copy is a main module go may write go.sum entries into.
  cp -r "$src" "$work/src"
  chmod -R u+w "$work/src"
  cd "$work/src"

  log "[2/3] downloading its dependencies (go mod download)"
  # The driver's logging helper monis.app/mlog lives on a host some module proxies do not serve (this machine's
  # proxy has a host allowlist). Only when it cannot be had, build with the stand-in in scripts/csi-driver-mlog,
  # which offers the same five names over klog; the driver's code and every other dependency stay the release's.
  if ! go mod download monis.app/mlog 2>"$work/mlog.err"; then
    log "      monis.app/mlog cannot be downloaded ($(tail -n1 "$work/mlog.err")); using scripts/csi-driver-mlog"
    go mod edit -replace "monis.app/mlog=$here/csi-driver-mlog"
    echo "monis.app/mlog replaced by scripts/csi-driver-mlog: $(tail -n1 "$work/mlog.err")" >"$out/build-notes.tmp"
  else
    echo "built from the release's go.mod and go.sum, nothing replaced" >"$out/build-notes.tmp"
  fi
  GOFLAGS=-mod=mod go mod download

  log "[3/3] go build ./cmd/secrets-store-csi-driver"
  # The same version variables the release's Makefile sets; the driver reports BuildVersion to providers and in its
  # user agent. CGO off, as the release images are built.
  local ldflags="-s -w -X $DRIVER_MODULE/pkg/version.BuildVersion=$DRIVER_VERSION"
  ldflags+=" -X $DRIVER_MODULE/pkg/version.BuildTime=$(date -u +%Y-%m-%d-%H:%M)"
  ldflags+=" -X $DRIVER_MODULE/pkg/version.Vcs=${commit:-$DRIVER_VERSION}"
  # Build to a temporary name, then rename: a killed build never leaves a half-written binary in the cache.
  CGO_ENABLED=0 GOFLAGS=-mod=mod go build -ldflags "$ldflags" -o "$out/.secrets-store-csi-driver.tmp" \
    ./cmd/secrets-store-csi-driver
  # What the tests take from the release beside the binary, kept with it so that a cached build needs no Go: the
  # CRDs, the RBAC and CSIDriver manifests of deploy/, and the CSI spec's csi.proto at the version the driver uses.
  rm -rf "$out/deploy" && mkdir -p "$out/deploy"
  cp deploy/secrets-store.csi.x-k8s.io_*.yaml deploy/rbac-secretproviderclass.yaml \
    deploy/rbac-secretprovidersyncing.yaml deploy/csidriver.yaml "$out/deploy/"
  cp "$(go list -m -f '{{.Dir}}' github.com/container-storage-interface/spec)/csi.proto" "$out/csi.proto"
  mv -f "$out/build-notes.tmp" "$out/build-notes"
  mv -f "$out/.secrets-store-csi-driver.tmp" "$bin"
  log "built in $((SECONDS - start)) s"
}

# One build at a time: parallel test runs on a fresh machine wait for the first instead of racing it.
if [ ! -x "$bin" ]; then
  exec 9>"$out/.lock"
  flock 9
  if [ ! -x "$bin" ]; then (build); fi
  flock -u 9
fi

echo "$bin"
