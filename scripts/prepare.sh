#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian machine that has Rust, Go and
# kubectl: Debian packages, and the control plane built from the Go module proxy (cached).
set -euo pipefail
log() { printf '[prepare] %s\n' "$*" >&2; }
need=()
for cmd in openssl curl python3; do command -v "$cmd" >/dev/null || need+=("$cmd"); done
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
for cmd in cargo go kubectl; do
  command -v "$cmd" >/dev/null || { log "$cmd is required (Rust toolchain, Go, kubectl)"; exit 1; }
done
"$(dirname "$0")/../e2e/controlplane/build.sh" >/dev/null
"$(dirname "$0")/../e2e/controlplane/prometheus-operator-crds.sh" >/dev/null
