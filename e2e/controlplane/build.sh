#!/usr/bin/env bash
# Build kube-apiserver and etcd from the Go module proxy into a cache keyed by version.
#
# kube-apiserver cannot be `go install`ed: k8s.io/kubernetes requires its staging modules at v0.0.0 and
# replaces them with local paths. We write a tiny wrapper module that requires k8s.io/kubernetes and replaces
# every staging module (the list is derived from k8s.io/kubernetes's own go.mod, never hard-coded) by its
# published v0.X.Y. etcd's server module has replace directives too, so it gets the same wrapper treatment.
#
# Usage: e2e/controlplane/build.sh            -> prints the bin directory on the last line of stdout
# Env:   TRINET_K8S_VERSION (default 1.36.3), TRINET_ETCD_VERSION (default 3.6.16),
#        TRINET_CACHE_DIR (default <repo>/.cache/controlplane)
set -euo pipefail

K=${TRINET_K8S_VERSION:-1.36.3}
E=${TRINET_ETCD_VERSION:-3.6.16}
S=0.${K#1.}
MINOR=${K#1.}; MINOR=${MINOR%%.*}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${TRINET_CACHE_DIR:-$REPO/.cache/controlplane}
BIN=$CACHE/bin-k8s$K-etcd$E
export GOFLAGS=-mod=mod

log() { printf '[controlplane-build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Run a long command, logging a heartbeat every 30 s so that a cold build never looks hung.
with_heartbeat() {
  local what=$1; shift
  "$@" &
  local pid=$! t0=$SECONDS
  while ! wait_for "$pid" 30; do log "still $what ($((SECONDS - t0))s)"; done
  wait "$pid"
}
wait_for() {  # true once pid $1 has exited, false after $2 seconds
  local i
  for ((i = 0; i < $2; i++)); do kill -0 "$1" 2>/dev/null || return 0; sleep 1; done
  ! kill -0 "$1" 2>/dev/null
}

if [[ -x $BIN/kube-apiserver && -x $BIN/etcd ]]; then
  log "cached: $BIN"
  echo "$BIN"
  exit 0
fi
command -v go >/dev/null || { log "go is not installed"; exit 1; }
mkdir -p "$BIN"
start=$(date +%s)

build_kas() {
  local dir=$CACHE/src/kas-$K
  rm -rf "$dir"; mkdir -p "$dir"; cd "$dir"
  cp "$HERE/kube-apiserver.go.txt" main.go
  printf 'module local/kas\n\ngo 1.24\n' > go.mod
  log "downloading k8s.io/kubernetes v$K module metadata"
  local mod
  mod=$(go mod download -json "k8s.io/kubernetes@v$K" | python3 -c 'import sys,json;print(json.load(sys.stdin)["GoMod"])')
  go mod edit -require="k8s.io/kubernetes@v$K"
  local n=0
  for m in $(awk '$1 ~ /^k8s\.io\// && $2=="v0.0.0" {print $1}' "$mod" | sort -u); do
    go mod edit -replace="$m=$m@v$S"; n=$((n+1))
  done
  log "replaced $n staging modules with v$S; resolving dependencies (go mod tidy, downloads a few hundred MB once)"
  with_heartbeat "resolving kube-apiserver dependencies" go mod tidy
  log "compiling kube-apiserver v$K (cold: about 4 minutes on 2 cores; warm GOCACHE: seconds)"
  with_heartbeat "compiling kube-apiserver" go build -pgo=off -trimpath -o "$BIN/kube-apiserver.tmp" \
    -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=v$K -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$MINOR -X k8s.io/client-go/pkg/version.gitVersion=v$K" .
  mv "$BIN/kube-apiserver.tmp" "$BIN/kube-apiserver"
}

build_etcd() {
  local dir=$CACHE/src/etcd-$E
  rm -rf "$dir"; mkdir -p "$dir"; cd "$dir"
  cp "$HERE/etcd.go.txt" main.go
  printf 'module local/etcdw\n\ngo 1.24\n' > go.mod
  log "resolving go.etcd.io/etcd/server/v3 v$E"
  go get "go.etcd.io/etcd/server/v3@v$E"
  go mod tidy
  log "compiling etcd v$E"
  with_heartbeat "compiling etcd" go build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" .
  mv "$BIN/etcd.tmp" "$BIN/etcd"
}

[[ -x $BIN/etcd ]] || build_etcd
[[ -x $BIN/kube-apiserver ]] || build_kas
log "done in $(( $(date +%s) - start ))s: $BIN"
echo "$BIN"
