#!/usr/bin/env bash
# Prints the directory that holds kube-apiserver, kube-controller-manager and etcd for real-control-plane tests.
#
# Order (see docs DESIGN.md "Test environment"):
#   1. $KUBEBUILDER_ASSETS, the envtest convention, when it holds kube-apiserver and etcd (envtest ships no
#      kube-controller-manager; scripts/test-cluster.ts says so when a test needs one).
#   2. A cache outside the repo, ${COFRE_CACHE_DIR:-$HOME/.cache/cofre}/kube/$KUBE_VERSION, filled once by building
#      the Go module k8s.io/kubernetes (about 9 minutes on 2 cores the first time, nothing afterwards).
#      etcd comes from Debian's etcd-server package and is symlinked into that directory.
# Everything but the final directory goes to stderr, so callers can do dir=$(bash scripts/kube-binaries.sh).
set -euo pipefail
# The Go toolchain may be installed without being on PATH (e.g. under CI's environment).
PATH="$PATH:/usr/local/go/bin:$HOME/go/bin"

KUBE_VERSION=v1.34.4
# The staging modules (k8s.io/api, k8s.io/client-go, ...) are published as v0.<minor>.<patch> of the same release.
STAGING_VERSION="v0.${KUBE_VERSION#v1.}"

log() { echo "kube-binaries: $*" >&2; }

if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/kube-apiserver" ] && [ -x "$KUBEBUILDER_ASSETS/etcd" ]; then
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

out="${COFRE_CACHE_DIR:-$HOME/.cache/cofre}/kube/$KUBE_VERSION"
mkdir -p "$out"

have_binaries() { [ -x "$out/kube-apiserver" ] && [ -x "$out/kube-controller-manager" ]; }

build() {
  command -v go >/dev/null || {
    log "the Go toolchain is needed to build kube-apiserver (https://go.dev/dl/), or set KUBEBUILDER_ASSETS"
    exit 1
  }
  local work
  work=$(mktemp -d "$out/.build.XXXXXX")
  # shellcheck disable=SC2064 # expand $work now: it is local to this function
  trap "rm -rf '$work'" EXIT
  cd "$work"

  log "building kube-apiserver and kube-controller-manager $KUBE_VERSION once into $out (about 9 minutes on 2 cores)"
  log "[1/4] downloading k8s.io/kubernetes@$KUBE_VERSION"
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
  [ -f "$gomod" ] || {
    log "go mod download gave no go.mod for k8s.io/kubernetes@$KUBE_VERSION"
    exit 1
  }

  # k8s.io/kubernetes's go.mod points its staging modules at ./staging/src/..., which a dependent module cannot
  # see; point each at its published version instead. The list comes from that go.mod, so it follows the version.
  {
    echo "module cofre.local/kube-build"
    echo
    grep -m1 '^go ' "$gomod"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    echo "replace ("
    sed -n "s#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/src/.*#\t\1 => \1 $STAGING_VERSION#p" "$gomod"
    echo ")"
  } >go.mod
  log "      $(grep -c ' => ' go.mod) staging modules replaced"

  # A build-tagged blank import makes `go mod tidy` pull in everything the two commands need.
  cat >tools.go <<'EOF'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
EOF

  log "[2/4] go mod tidy (downloads about 700 MB of modules the first time)"
  go mod tidy

  # kubectl and helm parse the server's version: without these the binary reports v0.0.0-master and they refuse it.
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2)"
  ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
  ldflags+=" -X k8s.io/component-base/version.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"

  # A heartbeat, since go build is silent for minutes.
  local start=$SECONDS
  (while sleep 30; do log "      ... still building ($((SECONDS - start)) s)"; done) &
  local heartbeat=$!
  # shellcheck disable=SC2064
  trap "kill $heartbeat 2>/dev/null || true; rm -rf '$work'" EXIT

  local step=3 cmd
  for cmd in kube-apiserver kube-controller-manager; do
    log "[$step/4] go build $cmd"
    # Build to a temporary name, then rename: a killed build never leaves a half-written binary in the cache.
    go build -ldflags "$ldflags" -o "$out/.$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd"
    mv -f "$out/.$cmd.tmp" "$out/$cmd"
    step=$((step + 1))
  done
  log "built in $((SECONDS - start)) s after module download"
}

if ! have_binaries; then
  # One build at a time: parallel test runs on a fresh machine wait for the first instead of racing it.
  exec 9>"$out/.lock"
  flock 9
  if ! have_binaries; then (build); fi
  flock -u 9
fi

etcd_bin=$(command -v etcd || true)
[ -n "$etcd_bin" ] || etcd_bin=/usr/bin/etcd
if [ ! -x "$etcd_bin" ]; then
  log "etcd not found: install it with 'apt-get update && apt-get install -y etcd-server' (Debian), or set KUBEBUILDER_ASSETS"
  exit 1
fi
ln -sfn "$etcd_bin" "$out/etcd"

echo "$out"
