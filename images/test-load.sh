#!/usr/bin/env bash
# Tests images/load.sh against a private containerd (own root, state and socket in a temporary
# directory, the CRI configured with our pause image), then stops it and removes its mounts.
# Usage: images/test-load.sh [ARCHIVE_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/sg-containerd.XXXXXX)
log() { printf '[images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
pid=
# alive PID: the process exists and is not a zombie waiting for us.
alive() { [[ -r /proc/$1/stat ]] && [[ $(cut -d' ' -f3 "/proc/$1/stat") != Z ]]; }
cleanup() {
  set +e
  if [[ -n $pid ]]; then
    kill "$pid" 2>/dev/null
    for _ in $(seq 50); do alive "$pid" || break; sleep 0.2; done
    alive "$pid" && kill -9 "$pid"
    wait "$pid" 2>/dev/null
  fi
  # Snapshot mounts an import may have left (none expected), deepest first.
  awk -v d="$tmp/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r | xargs -r -n1 umount -l
  rm -rf "$tmp"
}
trap cleanup EXIT
cat >"$tmp/config.toml" <<CONF
version = 2
root = "$tmp/root"
state = "$tmp/state"
[grpc]
  address = "$tmp/containerd.sock"
[ttrpc]
  address = "$tmp/containerd.sock.ttrpc"
[debug]
  address = "$tmp/debug.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  restrict_oom_score_adj = true
CONF
containerd --config "$tmp/config.toml" >"$tmp/containerd.log" 2>&1 &
pid=$!
for _ in $(seq 100); do [[ -S $tmp/containerd.sock ]] && break; sleep 0.1; done
if ! [[ -S $tmp/containerd.sock ]]; then log "containerd did not start"; cat "$tmp/containerd.log" >&2; exit 1; fi
"$here/load.sh" "$tmp/containerd.sock" "$@"
ctr --address "$tmp/containerd.sock" -n k8s.io images ls
