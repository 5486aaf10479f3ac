#!/usr/bin/env bash
# Fetches prometheus-operator's ServiceMonitor and PrometheusRule CustomResourceDefinitions from
# its Go module (example/prometheus-operator-crd/) at the pinned version, once; they are cached
# outside the clone in $SG_CACHE/prometheus-operator-<version>/.
# Prints the directory holding the two YAML files on its last line (stdout).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${SG_CACHE:-$HOME/.cache/securityguard}
out="$cache/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION"
files=(monitoring.coreos.com_servicemonitors.yaml monitoring.coreos.com_prometheusrules.yaml)

log() { printf '[prometheus-operator %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [[ -f $out/${files[0]} && -f $out/${files[1]} ]]; then
  log "$PROMETHEUS_OPERATOR_VERSION: cached in $out"
else
  log "$PROMETHEUS_OPERATOR_VERSION: downloading the module"
  mkdir -p "$cache"
  # A module cache of our own, removed once the two files are copied.
  export GOMODCACHE=$cache/go-prometheus-operator GOFLAGS=-modcacherw
  src=$(cd "$cache" && go mod download -json "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" \
    | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
  [[ -n $src ]] || { log "go mod download gave no directory"; exit 1; }
  mkdir -p "$out.tmp"
  for f in "${files[@]}"; do cp "$src/example/prometheus-operator-crd/$f" "$out.tmp/$f"; done
  chmod u+w "$out.tmp"/*
  rm -rf "$out"
  mv "$out.tmp" "$out"
  rm -rf "$GOMODCACHE"
  log "$PROMETHEUS_OPERATOR_VERSION: cached in $out"
fi
echo "$out"
