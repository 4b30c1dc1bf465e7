#!/usr/bin/env bash
# Prints the directory that holds kube-apiserver, kube-controller-manager, kubelet, kube-scheduler and etcd for
# real-control-plane tests (scripts/test-cluster.ts) and the real test node (scripts/test-node.ts).
#
# Order (see docs/testing.md):
#   1. $KUBEBUILDER_ASSETS, the envtest convention, when it holds kube-apiserver and etcd (envtest ships no
#      kube-controller-manager, kubelet or scheduler; the test scripts say so when a test needs one).
#   2. A cache outside the repo, ${COFRE_CACHE_DIR:-$HOME/.cache/cofre}/kube/$KUBE_VERSION, filled once by building
#      the Go module k8s.io/kubernetes (about 13 minutes on 2 cores the first time, nothing afterwards).
#      etcd is built once from the Go module go.etcd.io/etcd/server/v3 into .../etcd/$ETCD_VERSION (about 1 minute)
#      and symlinked into that directory: Debian's etcd 3.4 is older than kube-apiserver 1.34 supports (a watch
#      opened without a resourceVersion fails there with "Too large resource version").
# Everything but the final directory goes to stderr, so callers can do dir=$(bash scripts/kube-binaries.sh).
set -euo pipefail
# The Go toolchain may be installed without being on PATH (e.g. under CI's environment).
PATH="$PATH:/usr/local/go/bin:$HOME/go/bin"

KUBE_VERSION=v1.34.4
# The staging modules (k8s.io/api, k8s.io/client-go, ...) are published as v0.<minor>.<patch> of the same release.
STAGING_VERSION="v0.${KUBE_VERSION#v1.}"
# The etcd that this Kubernetes release is built and tested against (its go.mod requires the same client version).
ETCD_VERSION=v3.6.4

log() { echo "kube-binaries: $*" >&2; }

if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/kube-apiserver" ] && [ -x "$KUBEBUILDER_ASSETS/etcd" ]; then
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

cache="${COFRE_CACHE_DIR:-$HOME/.cache/cofre}"
out="$cache/kube/$KUBE_VERSION"
etcd_dir="$cache/etcd/$ETCD_VERSION"
mkdir -p "$out" "$etcd_dir"

COMMANDS=(kube-apiserver kube-controller-manager kubelet kube-scheduler)
missing() {
  local cmd
  for cmd in "${COMMANDS[@]}"; do [ -x "$out/$cmd" ] || echo "$cmd"; done
}

need_go() {
  command -v go >/dev/null || {
    log "the Go toolchain is needed to build $1 (https://go.dev/dl/), or set KUBEBUILDER_ASSETS"
    exit 1
  }
}

# Starts a log line every 30 s, since go build is silent for minutes; prints the pid to kill.
heartbeat() {
  local start=$SECONDS
  # stdout to /dev/null: the caller reads our stdout with $(...), which would otherwise wait for this loop.
  (while sleep 30; do log "      ... still building ($((SECONDS - start)) s)"; done) >/dev/null &
  echo $!
}

build() {
  need_go "${*}"
  local work
  work=$(mktemp -d "$out/.build.XXXXXX")
  # shellcheck disable=SC2064 # expand $work now: it is local to this function
  trap "rm -rf '$work'" EXIT
  cd "$work"

  log "building $* $KUBE_VERSION once into $out (about 13 minutes on 2 cores the first time)"
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
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
EOF

  log "[2/4] go mod tidy (downloads about 700 MB of modules the first time)"
  go mod tidy

  # kubectl and helm parse the server's version: without these the binary reports v0.0.0-master and they refuse it.
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2)"
  ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
  ldflags+=" -X k8s.io/component-base/version.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"

  local start=$SECONDS beat
  beat=$(heartbeat)
  # shellcheck disable=SC2064
  trap "kill $beat 2>/dev/null || true; rm -rf '$work'" EXIT

  log "[3/4] go build $*"
  local cmd
  for cmd in "$@"; do
    log "      $cmd"
    # Build to a temporary name, then rename: a killed build never leaves a half-written binary in the cache.
    go build -ldflags "$ldflags" -o "$out/.$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd"
    mv -f "$out/.$cmd.tmp" "$out/$cmd"
  done
  log "[4/4] built in $((SECONDS - start)) s after module download"
}

# etcd's own go.mod points its sibling modules at ../api etc., so `go install ...@version` refuses it; a small module
# that requires it resolves the published versions instead.
build_etcd() {
  need_go etcd
  local work
  work=$(mktemp -d "$etcd_dir/.build.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT
  cd "$work"
  log "building etcd $ETCD_VERSION once into $etcd_dir (about 1 minute on 2 cores)"
  printf 'module cofre.local/etcd-build\n\ngo 1.23\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >go.mod
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >tools.go
  go mod tidy
  local start=$SECONDS beat
  beat=$(heartbeat)
  # shellcheck disable=SC2064
  trap "kill $beat 2>/dev/null || true; rm -rf '$work'" EXIT
  go build -ldflags "-s -w" -o "$etcd_dir/.etcd.tmp" go.etcd.io/etcd/server/v3
  mv -f "$etcd_dir/.etcd.tmp" "$etcd_dir/etcd"
  log "etcd built in $((SECONDS - start)) s"
}

# One build at a time: parallel test runs on a fresh machine wait for the first instead of racing it.
if [ -n "$(missing)" ]; then
  exec 9>"$out/.lock"
  flock 9
  # shellcheck disable=SC2046 # one word per command name
  if [ -n "$(missing)" ]; then (build $(missing)); fi
  flock -u 9
fi
if [ ! -x "$etcd_dir/etcd" ]; then
  exec 8>"$etcd_dir/.lock"
  flock 8
  if [ ! -x "$etcd_dir/etcd" ]; then (build_etcd); fi
  flock -u 8
fi
# A symlink, not a copy: re-pointed on every run, so a cache directory filled by an older version of this script
# (whose etcd was Debian's) moves to this one.
ln -sfn "$etcd_dir/etcd" "$out/etcd"

echo "$out"
