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
pids=$(tac "$state/pids")
kill $pids 2>/dev/null
any_alive() { local p; for p in $pids; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
for _ in $(seq 1 50); do
  any_alive || break
  sleep 0.2
done
kill -9 $pids 2>/dev/null
rm -f "$state/pids"
echo "[control-plane] stopped" >&2
