#!/usr/bin/env bash
# Stops the real node that node-up.sh started in STATE_DIR and removes what it leaves on the
# machine, so that another up.sh/node-up.sh cycle starts clean. down.sh runs it first; node-up.sh
# runs it before starting (leftovers of a node that was not brought down).
#
#   e2e/controlplane/node-clean.sh STATE_DIR
#
# In order: the node's host processes (kubelet, kube-proxy, CoreDNS, local-path-provisioner);
# every container of our containerd (through containerd, then runc directly for what is left);
# containerd and its shims; the pods' network namespaces; every mount under STATE_DIR/node;
# kube-proxy's iptables rules; the pods' cgroups and /var/log/containers links. The containerd
# content (imported images) and the provisioned volumes under STATE_DIR/node stay.
set -uo pipefail
state=${1:?usage: node-clean.sh STATE_DIR}
[[ -d $state/node ]] || exit 0
state=$(cd "$state" && pwd)
nd=$state/node
sock=$nd/containerd/containerd.sock
runc_root=$nd/containerd/runc
log() { printf '[node %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
t_start=$(date +%s%N) t_step=$(date +%s%N) step_name=start
# Timing of each step, printed when SG_NODE_CLEAN_TRACE=1.
step() {
  local t; t=$(date +%s%N)
  [[ ${SG_NODE_CLEAN_TRACE:-0} == 1 ]] && log "clean step $step_name: $(((t - t_step) / 1000000)) ms"
  t_step=$t step_name=$1
}

alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }
stop_pids() { # pids...: TERM, up to 10 s, then KILL
  local p left
  (($# > 0)) || return 0
  kill "$@" 2>/dev/null
  for _ in $(seq 1 50); do
    left=0
    for p in "$@"; do alive "$p" && left=1; done
    ((left == 0)) && return 0
    sleep 0.2
  done
  kill -9 "$@" 2>/dev/null
  return 0
}

step "1."
# 1. The host processes other than containerd (node/pids: "NAME PID" lines).
if [[ -f $nd/pids ]]; then
  mapfile -t others < <(awk '$1 != "containerd" {print $2}' "$nd/pids")
  stop_pids "${others[@]}"
fi
containerd_pid=$(awk '$1 == "containerd" {print $2}' "$nd/pids" 2>/dev/null | tail -n 1)

step "2."
# 2. The pods' network namespaces, read from the sandboxes' OCI specs before they go away.
netns=()
for spec in "$nd"/containerd/state/io.containerd.runtime.v2.task/k8s.io/*/config.json; do
  [[ -f $spec ]] || continue
  while read -r p; do [[ -n $p ]] && netns+=("$p"); done < <(python3 - "$spec" <<'PY'
import json, sys
spec = json.load(open(sys.argv[1]))
for ns in spec.get("linux", {}).get("namespaces", []):
    if ns.get("type") == "network" and ns.get("path"):
        print(ns["path"])
PY
)
done

step "3."
# 3. The containers: through containerd when it answers (the shims then exit by themselves),
#    then runc directly for anything left.
if alive "$containerd_pid" && [[ -S $sock ]]; then
  for t in $(timeout 10 ctr -a "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
    timeout 10 ctr -a "$sock" -n k8s.io tasks delete --force "$t" >/dev/null 2>&1
  done
fi
if [[ -d $runc_root ]]; then
  for r in "$runc_root"/*; do
    [[ -d $r ]] || continue
    for c in $(runc --root "$r" list -q 2>/dev/null); do
      timeout 10 runc --root "$r" delete --force "$c" >/dev/null 2>&1
    done
  done
fi

step "4."
# 4. containerd, then the shims it started (their command line names our socket).
stop_pids $containerd_pid
mapfile -t shims < <(pgrep -f -- "containerd-shim-runc-v2 .*-address $sock( |$)")
if ((${#shims[@]} > 0)); then
  for a in "$nd"/containerd/state/io.containerd.runtime.v2.task/*/*/address; do
    [[ -f $a ]] && s=$(sed 's|^unix://||' "$a") && [[ $s == /run/containerd/s/* ]] && rm -f "$s"
  done
  stop_pids "${shims[@]}"
fi

step "5."
# 5. Network namespaces (their veth ends on sg-br0 go with them); containerd keeps them under
#    its state directory, so step 6 would catch them too.
for p in "${netns[@]}"; do
  umount "$p" 2>/dev/null || umount -l "$p" 2>/dev/null
  rm -f "$p"
done

step "6."
# 6. Every mount under the node directory, deepest first (overlay roots, /dev/shm of sandboxes,
#    the kubelet's volumes and its own bind mount of its root directory).
for _ in 1 2 3; do
  mapfile -t mounts < <(awk -v d="$nd/" 'index($5, d) == 1 || $5 == substr(d, 1, length(d) - 1) {print $5}' /proc/self/mountinfo | sort -r | uniq)
  ((${#mounts[@]} == 0)) && break
  for m in "${mounts[@]}"; do
    m=$(printf '%b' "$m") # mountinfo escapes spaces as \040
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done
done

step "7."
# 7. kube-proxy's rules (iptables, and nftables/ipvs if any), then the KUBE-* chains the
#    kubelet adds (KUBE-FIREWALL, the canaries) in IPv4 and IPv6; the host-local IP reservations.
if [[ -f $nd/kube-proxy.ran && -x $nd/bin/kube-proxy ]]; then
  "$nd/bin/kube-proxy" --cleanup >"$nd/kube-proxy-cleanup.log" 2>&1 \
    || log "kube-proxy --cleanup failed, see $nd/kube-proxy-cleanup.log"
  rm -f "$nd/kube-proxy.ran"
fi
for family in iptables ip6tables; do
  command -v "$family-save" >/dev/null || continue
  "$family-save" 2>/dev/null | python3 -c '
import sys
table, out = None, []
rules, chains = [], []
def flush():
    if table and (rules or chains):
        out.append("*" + table)
        out.extend("-D " + r for r in rules)
        out.extend("-F " + c for c in chains)
        out.extend("-X " + c for c in chains)
        out.append("COMMIT")
for line in sys.stdin:
    line = line.rstrip("\n")
    if line.startswith("*"):
        table, rules, chains = line[1:], [], []
    elif line.startswith(":KUBE-"):
        chains.append(line[1:].split()[0])
    elif line.startswith("-A ") and not line.split()[1].startswith("KUBE-") and " -j KUBE-" in line:
        rules.append(line[3:])
    elif line == "COMMIT":
        flush()
        table = None
print("\n".join(out))
' > "$nd/kube-chains.rules"
  [[ -s $nd/kube-chains.rules ]] && { "$family-restore" --noflush < "$nd/kube-chains.rules" \
    || log "$family: removing the KUBE-* chains failed (rules in $nd/kube-chains.rules)"; }
done
rm -f "$nd/kube-chains.rules"
# host-local's reservations; libcni's cached results of our network and of containerd's loopback
# (fixed directory /var/lib/cni/results).
rm -rf "$nd/cni/ipam"
rm -f /var/lib/cni/results/sg-node-* /var/lib/cni/results/cni-loopback-*

step "8."
# 8. The pods' cgroups (cgroupfs driver, cgroup v1: /sys/fs/cgroup/<controller>/kubepods) and
#    the kubelet's links to our pods' logs, its device plugin socket.
for c in /sys/fs/cgroup/*/kubepods; do
  [[ -d $c ]] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null
done
for l in /var/log/containers/*.log; do
  [[ -L $l ]] && [[ $(readlink "$l") == "$nd"/* ]] && rm -f "$l"
done
# The device plugin socket, at a path the kubelet does not let us choose.
rm -f /var/lib/kubelet/device-plugins/kubelet.sock

step end
rm -f "$nd/pids" "$nd/ready" "$state/node-env"
owner=/run/securityguard-node
[[ -f $owner && $(cat "$owner") == "$state" ]] && rm -f "$owner"
log "node stopped and cleaned up in $((($(date +%s%N) - t_start) / 1000000)) ms"
exit 0
