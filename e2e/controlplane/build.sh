#!/usr/bin/env bash
# Build kube-apiserver, kubectl and etcd from the Go module proxy into a cache keyed by version.
#
# kube-apiserver cannot be `go install`ed: k8s.io/kubernetes requires its staging modules at v0.0.0 and
# replaces them with local paths. We write a tiny wrapper module that requires k8s.io/kubernetes and replaces
# every staging module (the list is derived from k8s.io/kubernetes's own go.mod, never hard-coded) by its
# published v0.X.Y. kubectl is built the same way, at the same version, from the same kind of wrapper module
# (so it shares the dependency graph, and most compiled packages, with kube-apiserver). etcd's server module has
# replace directives too, so it gets the same wrapper treatment.
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

cached() { [[ -x $BIN/kube-apiserver && -x $BIN/etcd && -x $BIN/kubectl ]]; }
if cached; then
  log "cached: $BIN"
  echo "$BIN"
  exit 0
fi
command -v go >/dev/null || { log "go is not installed"; exit 1; }
mkdir -p "$BIN"
# Concurrent builds (several test sessions on one machine) would remove each other's source directories: one at a
# time, and whoever waited finds the binaries cached.
exec 9>"$CACHE/.build.lock"
if ! flock -n 9; then
  log "another build is running; waiting for it"
  flock 9
fi
if cached; then
  log "cached (built meanwhile): $BIN"
  echo "$BIN"
  exit 0
fi
start=$(date +%s)

# A wrapper module in $1 around the Go file $2: requires k8s.io/kubernetes v$K, every staging module replaced.
k8s_wrapper_module() {
  local dir=$1 main=$2 name
  name=$(basename "$dir")
  rm -rf "$dir"; mkdir -p "$dir"; cd "$dir"
  cp "$main" main.go
  printf 'module local/%s\n\ngo 1.24\n' "${name%%-*}" > go.mod
  log "downloading k8s.io/kubernetes v$K module metadata"
  local mod
  mod=$(go mod download -json "k8s.io/kubernetes@v$K" | python3 -c 'import sys,json;print(json.load(sys.stdin)["GoMod"])')
  go mod edit -require="k8s.io/kubernetes@v$K"
  local n=0
  for m in $(awk '$1 ~ /^k8s\.io\// && $2=="v0.0.0" {print $1}' "$mod" | sort -u); do
    go mod edit -replace="$m=$m@v$S"; n=$((n+1))
  done
  log "replaced $n staging modules with v$S; resolving dependencies (go mod tidy, downloads a few hundred MB once)"
  with_heartbeat "resolving $name dependencies" go mod tidy
}

# Version stamps as k8s.io/kubernetes's hack/lib/version.sh sets them.
K8S_LDFLAGS="-s -w -X k8s.io/component-base/version.gitVersion=v$K -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$MINOR -X k8s.io/client-go/pkg/version.gitVersion=v$K"

build_kas() {
  k8s_wrapper_module "$CACHE/src/kas-$K" "$HERE/kube-apiserver.go.txt"
  log "compiling kube-apiserver v$K (cold: about 4 minutes on 2 cores; warm GOCACHE: seconds)"
  with_heartbeat "compiling kube-apiserver" go build -pgo=off -trimpath -o "$BIN/kube-apiserver.tmp" \
    -ldflags "$K8S_LDFLAGS" .
  mv "$BIN/kube-apiserver.tmp" "$BIN/kube-apiserver"
}

build_kubectl() {
  k8s_wrapper_module "$CACHE/src/kubectl-$K" "$HERE/kubectl.go.txt"
  log "compiling kubectl v$K (shares most packages with kube-apiserver: about 25 s after it on 2 cores)"
  with_heartbeat "compiling kubectl" go build -pgo=off -trimpath -o "$BIN/kubectl.tmp" -ldflags "$K8S_LDFLAGS" .
  mv "$BIN/kubectl.tmp" "$BIN/kubectl"
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
[[ -x $BIN/kubectl ]] || build_kubectl
log "done in $(( $(date +%s) - start ))s: $BIN"
echo "$BIN"
