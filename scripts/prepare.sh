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
for cmd in cargo go kubectl; do
  command -v "$cmd" >/dev/null || { log "$cmd is required (Rust toolchain, Go, kubectl)"; exit 1; }
done
"$(dirname "$0")/../e2e/controlplane/build.sh" >/dev/null
