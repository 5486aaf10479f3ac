#!/usr/bin/env bash
# Stops what up.sh and node-up.sh started in STATE_DIR (keeps logs, certificates, the real
# node's images and volumes):
# first the real node, if any, with everything it leaves on the machine (node-clean.sh:
# containers, containerd shims, pod network namespaces, mounts, kube-proxy's iptables rules),
# then the control plane. The bridge sg-br0 and its routes stay (up.sh reuses them).
#
#   e2e/controlplane/down.sh STATE_DIR
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
state=${1:?usage: down.sh STATE_DIR}
[[ -d $state/node ]] && "$here/node-clean.sh" "$state"
[[ -f $state/pids ]] || exit 0
# etcd (the first line) last: the API server deregisters itself from the `kubernetes` Service
# when it stops, which needs etcd.
stop() { # pids...: TERM, up to 10 s, then KILL
  local p
  kill "$@" 2>/dev/null
  for _ in $(seq 1 50); do
    local alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.2
  done
  for p in "$@"; do kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null; done
  return 0
}
stop $(sed 1d "$state/pids" | tac)
stop $(sed -n 1p "$state/pids")
rm -f "$state/pids"
echo "[control-plane] stopped" >&2
