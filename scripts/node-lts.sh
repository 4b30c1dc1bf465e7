#!/usr/bin/env bash
# Prints the directory of a Node.js LTS release (bin/node, include/node) for CI and for machines whose Node.js is
# older than Cofre supports. Usage: bash scripts/node-lts.sh [major]   (default 24; 22 is supported too).
#
# Node.js publishes its Linux binaries on the npm registry as the packages node-linux-<arch>@<version>; the newest
# release of the major is fetched once into ${COFRE_CACHE_DIR:-$HOME/.cache/cofre}/node/<version> and reused.
# To use it: PATH="$dir/bin:$PATH" npm_config_nodedir="$dir" (native addons such as better-sqlite3 compile against
# its headers; they must be installed with the Node.js that will load them).
# Everything but the final directory goes to stderr, so callers can do dir=$(bash scripts/node-lts.sh 24).
set -euo pipefail

major="${1:-24}"
log() { echo "node-lts: $*" >&2; }

case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *)
    log "no Node.js package for $(uname -m); install Node.js $major yourself (https://nodejs.org)"
    exit 1
    ;;
esac
package="node-linux-$arch"

version=$(npm view "$package@$major" version --json | tr -d '"[], ' | grep -v '^$' | sort -V | tail -1)
[ -n "$version" ] || {
  log "the npm registry gave no version of $package@$major"
  exit 1
}
dir="${COFRE_CACHE_DIR:-$HOME/.cache/cofre}/node/$version"

if [ ! -x "$dir/bin/node" ]; then
  log "fetching Node.js $version ($package from the npm registry) into $dir"
  work=$(mktemp -d)
  # shellcheck disable=SC2064 # expand $work now
  trap "rm -rf '$work'" EXIT
  (cd "$work" && npm pack --silent "$package@$version" >/dev/null)
  mkdir -p "$work/unpacked"
  tar -xzf "$work"/*.tgz -C "$work/unpacked"
  mkdir -p "$(dirname "$dir")"
  rm -rf "$dir"
  mv "$work/unpacked/package" "$dir"
fi
"$dir/bin/node" --version >/dev/null
echo "$dir"
