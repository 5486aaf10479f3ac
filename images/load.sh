#!/usr/bin/env bash
# Imports every image images/build.sh made into the containerd listening on SOCKET, in the
# namespace the kubelet's CRI uses (k8s.io), then checks that each expected reference is listed.
# Usage: images/load.sh SOCKET [ARCHIVE_DIR]   (ARCHIVE_DIR: build.sh's last stdout line,
# default $SG_CACHE/images). SG_SNAPSHOTTER picks the snapshotter to unpack for (default: the
# containerd default, overlayfs).
set -euo pipefail
sock=${1:?usage: images/load.sh SOCKET [ARCHIVE_DIR]}
cache=${SG_CACHE:-$HOME/.cache/securityguard}
dir=${2:-$cache/images}
list="$dir/images.list"
log() { printf '[images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
start=$SECONDS

[[ -S $sock ]] || { log "no containerd socket at $sock"; exit 1; }
[[ -f $list ]] || { log "no $list: run images/build.sh first"; exit 1; }
ctr=(timeout 600 ctr --address "$sock" --namespace k8s.io)
import=(images import)
[[ -n ${SG_SNAPSHOTTER:-} ]] && import+=(--snapshotter "$SG_SNAPSHOTTER")

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
while read -r name ref; do
  [[ -n $name ]] || continue
  t0=$SECONDS
  if ! "${ctr[@]}" "${import[@]}" "$dir/$name.tar" >"$tmp" 2>&1; then
    log "FAILED: ctr images import $dir/$name.tar"; cat "$tmp" >&2; exit 1
  fi
  log "$ref: imported in $((SECONDS - t0))s"
done <"$list"

if ! "${ctr[@]}" images ls -q >"$tmp" 2>&1; then
  log "FAILED: ctr images ls"; cat "$tmp" >&2; exit 1
fi
missing=0
while read -r name ref; do
  [[ -n $name ]] || continue
  grep -qxF "$ref" "$tmp" || { log "MISSING after import: $ref ($name.tar)"; missing=1; }
done <"$list"
if ((missing)); then log "listed references:"; cat "$tmp" >&2; exit 1; fi
log "$(wc -l <"$list") images loaded into $sock in $((SECONDS - start))s"
