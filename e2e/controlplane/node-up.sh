#!/usr/bin/env bash
# Joins one real node, `sg-node`, to the control plane that up.sh started in STATE_DIR: pods on
# it run in real containers (containerd + runc from Debian, CNI bridge on sg-br0).
#
#   e2e/controlplane/up.sh STATE_DIR
#   e2e/controlplane/node-up.sh STATE_DIR
#   e2e/controlplane/node-check.sh STATE_DIR   (optional: proves pods, DNS, Services, volumes)
#   e2e/controlplane/down.sh STATE_DIR         stops the node and the control plane
#
# Host processes, all appended to STATE_DIR/pids (and named in STATE_DIR/node/pids):
#   containerd              own root, state and socket under STATE_DIR/node/containerd; the
#                           images of images/build.sh imported into its k8s.io namespace; pulls
#                           go to a closed local proxy (no registry is ever contacted)
#   kubelet                 node sg-node, label securityguard.io/node=real, InternalIP and
#                           serving address 10.244.0.1:10250, identity system:node:sg-node
#                           (Node authorizer + NodeRestriction)
#   kube-proxy              iptables mode, ClusterIPs 10.96.0.0/16 reachable from the host and
#                           from pods (hairpin included), NodePorts only on 10.244.0.1
#   CoreDNS                 10.244.0.1:53 (udp, tcp), zone cluster.local; other names are
#                           refused unless SG_NODE_DNS_FORWARD=1 (then forwarded to the host's
#                           /etc/resolv.conf)
#   local-path-provisioner  StorageClass local-path (the default, WaitForFirstConsumer, Delete),
#                           volumes under STATE_DIR/node/storage, helper pods in the namespace
#                           local-path-storage
# docs/local-cluster.md describes the addresses.
#
# Writes STATE_DIR/node-env (SG_NODE, SG_NODE_DIR, SG_CONTAINERD_SOCKET, SG_NODE_IP,
# SG_CLUSTER_DNS). Every wait is bounded: a component that does not come up ends the script
# with a non-zero status and the last lines of its log (STATE_DIR/node/*.log).
#
# Environment:
#   SG_NODE_SKIP_IMAGES=1   do not build/import the images (they are in containerd already)
#   SG_NODE_DNS_FORWARD=1   CoreDNS forwards names outside cluster.local to /etc/resolv.conf
#
# Only one real node runs on a machine (the bridge, kube-proxy's iptables rules, port 10250 and
# 53 on 10.244.0.1 are machine-wide): node-up.sh refuses while another STATE_DIR's node runs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
state=${1:?usage: node-up.sh STATE_DIR}
[[ -d $state ]] || { echo "node-up.sh: $state does not exist: run up.sh $state first" >&2; exit 1; }
state=$(cd "$state" && pwd)
# shellcheck source=pki.sh
source "$here/pki.sh"

node=sg-node
node_ip=10.244.0.1
nd=$state/node
pki=$state/pki
sock=$nd/containerd/containerd.sock
owner=/run/securityguard-node
t_start=$(date +%s.%N)

log() { printf '[node %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
elapsed() { python3 -c 'import sys,time; print(f"{time.time()-float(sys.argv[1]):.1f}s")' "$1"; }
now() { date +%s.%N; }
fail() { # component message: its log's last lines, then exit 1
  log "FAILED: $2"
  if [[ -f $nd/$1.log ]]; then
    log "last lines of $nd/$1.log:"
    tail -n 25 "$nd/$1.log" >&2
  fi
  log "the node is left as it is for inspection; down.sh $state stops everything"
  exit 1
}
# wait_for COMPONENT SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.5 s; fails early when
# the component's process has exited.
wait_for() {
  local c=$1 secs=$2 what=$3; shift 3
  local t0 pid deadline
  t0=$(now)
  pid=$(awk -v c="$c" '$1 == c {print $2}' "$nd/pids" 2>/dev/null | tail -n 1)
  deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then fail "$c" "$c exited while waiting for: $what"; fi
    ((SECONDS < deadline)) || fail "$c" "$what: not after ${secs}s"
    sleep 0.5
  done
  log "$what ($(elapsed "$t0"))"
}
start() { # name command...: runs in the background, logs to node/NAME.log
  local name=$1; shift
  "$@" >"$nd/$name.log" 2>&1 8>&- &
  echo $! >> "$state/pids"
  echo "$name $!" >> "$nd/pids"
}

[[ $(id -u) == 0 ]] || { log "must run as root (containerd, kubelet, iptables)"; exit 1; }
[[ -f $state/env ]] || { log "no control plane in $state: run up.sh $state first"; exit 1; }
KUBECONFIG=$(sed -n 's/^KUBECONFIG=//p' "$state/env")
api=$(sed -n 's/^SG_APISERVER=//p' "$state/env")
export KUBECONFIG
timeout 10 kubectl get --raw /readyz >/dev/null 2>&1 \
  || { log "the control plane of $state does not answer at $api: run up.sh $state first"; exit 1; }
[[ $api == "https://$node_ip:"* ]] || { log "the control plane in $state listens on $api, not on $node_ip: restart it with this up.sh"; exit 1; }

# One real node per machine: node-up.sh runs one at a time (the lock), and refuses while the node
# of another state directory runs.
exec 8>"$owner.lock"
flock -w 600 8 || { log "another node-up.sh holds $owner.lock for 10 minutes"; exit 1; }
if [[ -f $owner ]]; then
  other=$(cat "$owner")
  if [[ $other != "$state" ]] && [[ -f $other/node/pids ]] \
      && kill -0 $(awk '$1 == "containerd" {print $2}' "$other/node/pids") 2>/dev/null; then
    log "another real node runs on this machine (state directory $other): stop it first with down.sh $other"
    exit 1
  fi
fi
if [[ -f $nd/ready && -f $nd/pids ]] && kill -0 $(awk '{print $2}' "$nd/pids") 2>/dev/null; then
  log "already running in $state"; exit 0
fi
"$here/node-clean.sh" "$state" 8>&-
echo "$state" > "$owner"

bin=$("$here/build.sh" 8>&- | tail -n 1) || { log "FAILED: e2e/controlplane/build.sh (its output above)"; exit 1; }
mkdir -p "$nd"/{containerd,cni/net.d,kubelet,pod-logs,storage,volume-plugins,coredns}
ln -sfn "$bin" "$nd/bin"
: > "$nd/pids"

# --- Identities: certificates signed by the cluster CA, kubeconfigs on the bridge address.
issue_cert "$pki" kubelet-serving "$node" "" "IP:$node_ip,DNS:$node"
issue_cert "$pki" kubelet-client "system:node:$node" system:nodes
issue_cert "$pki" kube-proxy system:kube-proxy
issue_cert "$pki" coredns securityguard:coredns
issue_cert "$pki" local-path-provisioner securityguard:local-path-provisioner
for c in kubelet-client kube-proxy coredns local-path-provisioner; do
  cert_kubeconfig "$nd/$c.kubeconfig" "$api" "$pki/ca.crt" "$pki/$c.crt" "$pki/$c.key"
done

# --- Kernel settings: bridged pod-to-pod traffic goes through iptables (Service replies are
# un-NATed); forwarding on.
if [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] || modprobe br_netfilter 2>/dev/null; then
  sysctl -qw net.bridge.bridge-nf-call-iptables=1
else
  log "warning: br_netfilter unavailable: pod-to-Service traffic within the node may fail"
fi
sysctl -qw net.ipv4.ip_forward=1

# --- CNI: the bridge sg-br0 (created by up.sh). Pods get 10.244.0.10-254 and routes to the
# bridge's /24 and to the Services only: no default route, so nothing leaves the machine.
# containerd adds the loopback network itself.
cat > "$nd/cni/10-sg-node.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "sg-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "sg-br0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$nd/cni/ipam",
        "ranges": [[{"subnet": "10.244.0.0/24", "rangeStart": "10.244.0.10", "rangeEnd": "10.244.0.254", "gateway": "$node_ip"}]],
        "routes": [{"dst": "10.96.0.0/16"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
# Written before containerd starts, and atomically (containerd reloads it on every change).
mv "$nd/cni/10-sg-node.conflist" "$nd/cni/net.d/10-sg-node.conflist"

# --- containerd
cat > "$nd/containerd/config.toml" <<EOF
version = 2
root = "$nd/containerd/root"
state = "$nd/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$sock"

[ttrpc]
  address = "$sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$nd/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # The pods' network namespaces under the state directory (cleaned up with it).
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$nd/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$nd/cni/net.d"
EOF
log "starting containerd ($sock)"
t0=$(now)
# No registry is reachable from this machine and none may be contacted: image pulls go to a
# closed local port and fail at once ("proxyconnect tcp: ... connection refused").
start containerd env HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY= \
  containerd --config "$nd/containerd/config.toml"
wait_for containerd 30 "containerd answers" ctr -a "$sock" version
plugins=$(ctr -a "$sock" plugins ls 2>/dev/null)
grep -q 'io.containerd.snapshotter.v1.*overlayfs.*ok' <<<"$plugins" \
  || fail containerd "the overlayfs snapshotter is not available"

# --- Images
if [[ ${SG_NODE_SKIP_IMAGES:-0} == 1 ]]; then
  log "images: skipped (SG_NODE_SKIP_IMAGES=1)"
else
  t0=$(now)
  log "images: building (images/build.sh)"
  images=$("$repo/images/build.sh" 2>"$nd/images-build.log" 8>&- | tail -n 1) || fail images-build "images/build.sh failed"
  log "images: built ($(elapsed "$t0")), importing into containerd"
  t0=$(now)
  "$repo/images/load.sh" "$sock" "$images" >"$nd/images-load.log" 2>&1 8>&- || fail images-load "images/load.sh failed"
  log "images: imported ($(elapsed "$t0"))"
fi
# The listing first, then the search: `ctr ... | grep -q` under pipefail fails when grep exits at
# its match before ctr has written everything (SIGPIPE).
refs=$(ctr -a "$sock" -n k8s.io images ls -q)
grep -qx 'registry.k8s.io/pause:3.10' <<<"$refs" \
  || fail containerd "containerd has no image registry.k8s.io/pause:3.10 (the pod sandbox image)"

# --- Cluster objects: RBAC of the node's host processes, local-path-provisioner's namespace,
# configuration and StorageClass.
storage_config=$(python3 -c 'import json,sys; print(json.dumps({"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": [sys.argv[1]]}]}))' "$nd/storage")
kubectl apply -f - >"$nd/objects.log" 2>&1 <<EOF || fail objects "applying the node's cluster objects failed"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "securityguard:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "securityguard:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "securityguard:coredns"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "securityguard:coredns"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "securityguard:local-path-provisioner"}
rules:
- apiGroups: [""]
  resources: [nodes, persistentvolumeclaims, configmaps, pods, pods/log]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [persistentvolumes]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [storage.k8s.io]
  resources: [storageclasses]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "securityguard:local-path-provisioner"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "securityguard:local-path-provisioner"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "securityguard:local-path-provisioner"}
---
apiVersion: v1
kind: Namespace
metadata:
  name: local-path-storage
  labels:
    pod-security.kubernetes.io/enforce: privileged
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: local-path-provisioner, namespace: local-path-storage}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, patch, update, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: local-path-provisioner, namespace: local-path-storage}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: local-path-provisioner}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "securityguard:local-path-provisioner"}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: local-path-provisioner, namespace: local-path-storage}
automountServiceAccountToken: false
---
apiVersion: v1
kind: ConfigMap
metadata: {name: local-path-config, namespace: local-path-storage}
data:
  config.json: '$storage_config'
  setup: |-
    #!/bin/sh
    set -eu
    mkdir -m 0777 -p "\$VOL_DIR"
  teardown: |-
    #!/bin/sh
    set -eu
    rm -rf "\$VOL_DIR"
  helperPod.yaml: |-
    apiVersion: v1
    kind: Pod
    metadata:
      name: helper-pod
    spec:
      automountServiceAccountToken: false
      containers:
      - name: helper-pod
        image: docker.io/library/debian:bookworm-slim
        imagePullPolicy: IfNotPresent
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local-path
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: rancher.io/local-path
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
EOF
kubectl -n local-path-storage get configmap local-path-config -o jsonpath='{.data.config\.json}' > "$nd/local-path-config.json"
kubectl -n local-path-storage get configmap local-path-config -o jsonpath='{.data.helperPod\.yaml}' > "$nd/local-path-helper-pod.yaml"

# --- kubelet
printf 'nameserver %s\n' "$node_ip" > "$nd/resolv.conf"
cat > "$nd/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $node_ip
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $pki/kubelet-serving.crt
tlsPrivateKeyFile: $pki/kubelet-serving.key
rotateCertificates: false
serverTLSBootstrap: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix://$sock
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
oomScoreAdj: 0
clusterDNS: [$node_ip]
clusterDomain: cluster.local
resolvConf: $nd/resolv.conf
podLogsDir: $nd/pod-logs
# Our imported images are never garbage-collected (they cannot be pulled again).
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
maxPods: 110
EOF
log "starting kubelet (node $node, $node_ip:10250)"
t0=$(now)
kubelet_started=$(date +%s)
# Ready as posted by this kubelet: after a restart the Node object still shows the previous
# kubelet's Ready status for a while.
ready_since_start() {
  local out hb
  out=$(kubectl get node "$node" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}') || return 1
  [[ ${out%% *} == True ]] || return 1
  hb=$(date -d "${out#* }" +%s) || return 1
  ((hb >= kubelet_started))
}
start kubelet "$bin/kubelet" --config "$nd/kubelet.yaml" --kubeconfig "$nd/kubelet-client.kubeconfig" \
  --root-dir "$nd/kubelet" --cert-dir "$nd/kubelet/pki" --volume-plugin-dir "$nd/volume-plugins" \
  --hostname-override "$node" --node-ip "$node_ip" --node-labels securityguard.io/node=real
wait_for kubelet 120 "kubelet: node $node registered" kubectl get node "$node"
wait_for kubelet 120 "kubelet: node $node Ready" ready_since_start

# --- kube-proxy
cat > "$nd/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $nd/kube-proxy.kubeconfig
mode: iptables
hostnameOverride: $node
bindAddress: $node_ip
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clusterCIDR: 10.244.0.0/16
nodePortAddresses: [$node_ip/32]
oomScoreAdj: 0
iptables:
  localhostNodePorts: false
# Leave the machine's conntrack settings as they are.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
log "starting kube-proxy (iptables mode)"
touch "$nd/kube-proxy.ran"
start kube-proxy "$bin/kube-proxy" --config "$nd/kube-proxy.yaml"
wait_for kube-proxy 60 "kube-proxy: healthy and rules written" \
  sh -c 'curl -fsS http://127.0.0.1:10256/healthz && iptables -t nat -S KUBE-SERVICES | grep -q default/kubernetes'

# --- CoreDNS
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
health_port=$(free_port); ready_port=$(free_port)
{
  cat <<EOF
cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {
    bind $node_ip
    errors
    health 127.0.0.1:$health_port
    ready 127.0.0.1:$ready_port
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $nd/coredns.kubeconfig
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    cache 30
    loadbalance
}
EOF
  if [[ ${SG_NODE_DNS_FORWARD:-0} == 1 ]]; then
    printf '.:53 {\n    bind %s\n    errors\n    forward . /etc/resolv.conf\n    cache 30\n    loop\n}\n' "$node_ip"
  fi
} > "$nd/coredns/Corefile"
log "starting CoreDNS ($node_ip:53)"
start coredns "$bin/coredns" -conf "$nd/coredns/Corefile"
wait_for coredns 60 "CoreDNS: ready" curl -fsS "http://127.0.0.1:$ready_port/ready"

# --- local-path-provisioner (out of the cluster: configuration and helper pod from files, the
# setup/teardown scripts from the ConfigMap that its helper pods mount)
log "starting local-path-provisioner"
start local-path-provisioner "$bin/local-path-provisioner" start \
  --kubeconfig "$nd/local-path-provisioner.kubeconfig" \
  --namespace local-path-storage --configmap-name local-path-config \
  --service-account-name local-path-provisioner \
  --config "$nd/local-path-config.json" --helper-pod-file "$nd/local-path-helper-pod.yaml" \
  --helper-image docker.io/library/debian:bookworm-slim
wait_for local-path-provisioner 60 "local-path-provisioner: controller started" \
  grep -q 'Started provisioner controller' "$nd/local-path-provisioner.log"
wait_for objects 10 "StorageClass local-path present" kubectl get storageclass local-path

cat > "$state/node-env" <<EOF
SG_NODE=$node
SG_NODE_IP=$node_ip
SG_NODE_DIR=$nd
SG_CONTAINERD_SOCKET=$sock
SG_CLUSTER_DNS=$node_ip
EOF
touch "$nd/ready"
log "ready in $(elapsed "$t_start"): node $node ($state/node-env)"
