#!/usr/bin/env bash
# Builds the local control plane from the Go module proxy, once per pinned version:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, the real node's kubelet
# and kube-proxy (same module and build cache), and the node's CoreDNS (only the plugins the
# cluster uses) and local-path-provisioner.
# Binaries are cached outside the clone in $SG_CACHE/controlplane/<component>-<version>/.
# Prints the directory holding the binaries on its last line (stdout); progress goes to stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${SG_CACHE:-$HOME/.cache/securityguard}
root="$cache/controlplane"
bin="$root/bin-$K8S_VERSION-etcd$ETCD_VERSION-kwok$KWOK_VERSION"
mkdir -p "$root" "$bin"
export GOFLAGS="-mod=mod -modcacherw" CGO_ENABLED=0
# The Go module and build caches of these builds are our own, under $SG_CACHE/go, and are removed
# once every binary is built: the binaries are what is kept (by version), and a cold build leaves
# about 8 GB of caches behind. SG_KEEP_GO_CACHE=1 keeps them (when changing versions often).
export GOMODCACHE=$cache/go/mod GOCACHE=$cache/go/build
# One build at a time per cache (the tests, the demo and a benchmark may start together).
mkdir -p "$cache"
exec 8>"$cache/.controlplane-build.lock"
flock -w 3600 8 || { echo "[control-plane] another build holds $cache/.controlplane-build.lock" >&2; exit 1; }

log() { printf '[control-plane %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

build_kubernetes() {
  local dir="$root/kubernetes-$K8S_VERSION" out="$root/kubernetes-$K8S_VERSION/bin"
  local components=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)
  local missing=0 c
  for c in "${components[@]}"; do [[ -x $out/$c ]] || missing=1; done
  if ((missing == 0)); then
    log "kubernetes $K8S_VERSION: cached in $out"; return
  fi
  mkdir -p "$dir/src" "$out"
  log "kubernetes $K8S_VERSION: downloading the module"
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  local minor=${K8S_VERSION#v1.}
  minor=${minor%%.*}
  local patch=${K8S_VERSION##*.}
  {
    echo "module securityguard.io/controlplane/kubernetes"
    echo
    echo "go 1.25.0"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    # The staging modules are required at v0.0.0 and replaced by ./staging paths that a dependent
    # module ignores: point each at its published version instead.
    grep -E '^\s*k8s.io/[a-z0-9-]+ => ./staging/' "$gomod" | awk -v v="v0.$minor.$patch" '{print "replace " $1 " => " $1 " " v}'
  } > "$dir/src/go.mod"
  cat > "$dir/src/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
)
GO
  (cd "$dir/src" && log "kubernetes $K8S_VERSION: resolving modules" && go mod tidy -e >&2 2>&1 | tail -5 >&2 || true)
  local pkg="k8s.io/component-base/version" cpkg="k8s.io/client-go/pkg/version"
  local ld="-s -w"
  for p in $pkg $cpkg; do
    ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  for c in "${components[@]}"; do
    if [[ -x $out/$c ]]; then log "$c: cached"; continue; fi
    log "$c $K8S_VERSION: compiling (a cold build takes many minutes on 2 cores)"
    local t0=$SECONDS
    (cd "$dir/src" && go build -trimpath -tags selinux,notest -ldflags "$ld" -o "$out/$c.tmp" "k8s.io/kubernetes/cmd/$c")
    mv "$out/$c.tmp" "$out/$c"
    log "$c: built in $((SECONDS - t0))s"
  done
}

build_etcd() {
  local dir="$root/etcd-$ETCD_VERSION" out="$root/etcd-$ETCD_VERSION/bin"
  if [[ -x $out/etcd ]]; then log "etcd $ETCD_VERSION: cached in $out"; return; fi
  mkdir -p "$dir/src" "$out"
  (cd "$dir/src"
    [[ -f go.mod ]] || go mod init securityguard.io/controlplane/etcd >/dev/null 2>&1
    log "etcd $ETCD_VERSION: resolving modules"
    go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
    log "etcd $ETCD_VERSION: compiling"
    go build -trimpath -ldflags "-s -w" -o "$out/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$out/etcd.tmp" "$out/etcd"
  log "etcd: built"
}

build_kwok() {
  local dir="$root/kwok-$KWOK_VERSION" out="$root/kwok-$KWOK_VERSION/bin"
  if [[ -x $out/kwok && -d $dir/stages ]]; then log "kwok $KWOK_VERSION: cached in $out"; return; fi
  mkdir -p "$out" "$dir/stages"
  log "kwok $KWOK_VERSION: compiling"
  GOBIN="$out" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" >&2
  local src
  src=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
  # The stages that make nodes Ready, pods Running/Ready, Job pods Succeeded and deleted pods go away.
  for s in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
           pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    cp "$src/kustomize/stage/$s.yaml" "$dir/stages/$(basename "$s").yaml" 2>/dev/null \
      || cp "$src"/kustomize/stage/"$(dirname "$s")"/*.yaml "$dir/stages/" 
  done
  chmod -R u+w "$dir/stages"
  log "kwok: built"
}

# CoreDNS with only the plugins the cluster's Corefile uses (the full set pulls in every cloud
# SDK): a main package of our own that lists them, as CoreDNS documents for custom builds. The
# directive order is taken from the module's plugin.cfg.
build_coredns() {
  local dir="$root/coredns-$COREDNS_VERSION" out="$root/coredns-$COREDNS_VERSION/bin"
  local plugins=(reload bind ready health errors log loadbalance cache kubernetes loop forward)
  if [[ -x $out/coredns && $(cat "$dir/plugins" 2>/dev/null) == "${plugins[*]}" ]]; then
    log "coredns $COREDNS_VERSION: cached in $out"; return
  fi
  mkdir -p "$dir/src" "$out"
  local src
  src=$(go mod download -json "github.com/coredns/coredns@$COREDNS_VERSION" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
  local directives imports p
  directives=$(awk -F: -v want=" ${plugins[*]} " '!/^#/ && NF == 2 && index(want, " " $1 " ") {printf "\t\"%s\",\n", $1}' "$src/plugin.cfg")
  [[ $(grep -c . <<<"$directives") == "${#plugins[@]}" ]] || { log "coredns: plugin.cfg lacks one of: ${plugins[*]}"; return 1; }
  imports=$(for p in "${plugins[@]}"; do printf '\t_ "github.com/coredns/coredns/plugin/%s"\n' "$p"; done)
  (cd "$dir/src"
    [[ -f go.mod ]] || go mod init securityguard.io/controlplane/coredns >/dev/null 2>&1
    cat > main.go <<GO
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"
$imports
)

func init() {
	dnsserver.Directives = []string{
$directives
	}
}

func main() { coremain.Run() }
GO
    log "coredns $COREDNS_VERSION: resolving modules"
    go get "github.com/coredns/coredns@$COREDNS_VERSION" >&2
    go mod tidy >&2
    log "coredns $COREDNS_VERSION: compiling"
    go build -trimpath -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" -o "$out/coredns.tmp" .)
  mv "$out/coredns.tmp" "$out/coredns"
  echo "${plugins[*]}" > "$dir/plugins"
  log "coredns: built"
}

build_local_path_provisioner() {
  local dir="$root/local-path-provisioner-$LOCAL_PATH_PROVISIONER_VERSION"
  local out="$dir/bin"
  if [[ -x $out/local-path-provisioner ]]; then log "local-path-provisioner $LOCAL_PATH_PROVISIONER_VERSION: cached in $out"; return; fi
  mkdir -p "$out"
  log "local-path-provisioner $LOCAL_PATH_PROVISIONER_VERSION: compiling"
  GOBIN="$out" go install -trimpath -ldflags "-s -w -X main.VERSION=$LOCAL_PATH_PROVISIONER_VERSION" \
    "github.com/rancher/local-path-provisioner@$LOCAL_PATH_PROVISIONER_VERSION" >&2
  log "local-path-provisioner: built"
}

build_etcd
build_kwok
build_kubernetes
build_coredns
build_local_path_provisioner
for f in "$root/kubernetes-$K8S_VERSION/bin/"* "$root/etcd-$ETCD_VERSION/bin/etcd" "$root/kwok-$KWOK_VERSION/bin/kwok" \
         "$root/coredns-$COREDNS_VERSION/bin/coredns" \
         "$root/local-path-provisioner-$LOCAL_PATH_PROVISIONER_VERSION/bin/local-path-provisioner"; do
  ln -sf "$f" "$bin/$(basename "$f")"
done
ln -sfn "$root/kwok-$KWOK_VERSION/stages" "$bin/stages"
if [[ -d $cache/go && ${SG_KEEP_GO_CACHE:-0} != 1 ]]; then
  rm -rf "$cache/go"
  log "Go caches of the build removed (the binaries are cached)"
fi
log "ready: $bin"
echo "$bin"
