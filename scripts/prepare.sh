#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian machine that has Rust, Go and
# kubectl: Debian packages, and the control plane built from the Go module proxy (cached).
set -euo pipefail
log() { printf '[prepare] %s\n' "$*" >&2; }
need=()
# command:package (tests/pitr.rs stops its archivers with pkill; the benchmarks compute with bc).
for pair in openssl:openssl curl:curl python3:python3 pkill:procps bc:bc; do
  command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
if ((${#need[@]})); then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi
# promtool and prometheus (the monitoring tests) from Debian's package. The tests start their
# own Prometheus on a free port; the package's service is stopped where systemd runs it.
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  log "installing prometheus (promtool)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  if [ -d /run/systemd/system ]; then systemctl disable --now prometheus >/dev/null 2>&1 || true; fi
fi
# The real node and the image builds: containerd, runc, the CNI plugins, iptables for
# kube-proxy, catatonit (the pause image), debootstrap and buildah/podman/skopeo (the images).
node_packages=(containerd runc containernetworking-plugins catatonit iptables conntrack debootstrap buildah podman skopeo)
missing=()
for pkg in "${node_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]} (the real node and the image builds)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts containerd as a service: the node runs its own, with its own socket and state.
  if [ -d /run/systemd/system ]; then systemctl disable --now containerd >/dev/null 2>&1 || true; fi
fi
for cmd in cargo go kubectl; do
  command -v "$cmd" >/dev/null || { log "$cmd is required (Rust toolchain, Go, kubectl)"; exit 1; }
done
"$(dirname "$0")/../e2e/controlplane/build.sh" >/dev/null
"$(dirname "$0")/../e2e/controlplane/prometheus-operator-crds.sh" >/dev/null
