#!/usr/bin/env bash
# Starts a local Kubernetes control plane: etcd (on loopback), kube-apiserver (on the node
# bridge's address, see below), kube-controller-manager, kube-scheduler and kwok (three fake
# nodes that run no containers but make pods Running/Ready and Job pods Succeeded, and serve
# pods/log from a file: see below). docs/local-cluster.md describes the addresses and layout.
#
#   e2e/controlplane/up.sh STATE_DIR        start (builds the binaries first if needed)
#   e2e/controlplane/node-up.sh STATE_DIR   then, optionally, the real node (containers)
#   e2e/controlplane/down.sh STATE_DIR      stop everything started in STATE_DIR
#
# The bridge sg-br0 (10.244.0.1/24) is created when missing and left in place by down.sh: the
# API server listens on https://10.244.0.1:PORT so that the real node's pods reach it through
# the `kubernetes` Service (10.96.0.1:443, endpoints kept by the API server's lease reconciler).
# Several control planes (state directories) can run at once on different ports.
#
# kwok manages only the nodes annotated kwok.x-k8s.io/node=fake: kwok-node-0..2, labelled
# type=kwok and tainted kwok.x-k8s.io/node=fake:NoSchedule. A namespace puts its pods there
# with the annotations scheduler.alpha.kubernetes.io/node-selector: type=kwok and
# scheduler.alpha.kubernetes.io/defaultTolerations tolerating that taint (admission plugins
# PodNodeSelector and PodTolerationRestriction); other pods go to the real node.
#
# STATE_DIR receives the certificates (pki/), logs, etcd data and:
#   kubeconfig       an administrator (system:masters) kubeconfig
#   env              KUBECONFIG=..., SG_APISERVER=https://10.244.0.1:PORT, SG_CONTROLPLANE_DIR=...,
#                    SG_POD_LOGS=STATE_DIR/pod-logs.log
#   pod-logs.log     the log of every container of every pod, as `kubectl logs` (the API's
#                    pods/log) shows it: lines in the CRI format (`<RFC 3339 time> stdout F <text>`)
#                    appended by tests; empty at start
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
state=${1:?usage: up.sh STATE_DIR}
mkdir -p "$state"
state=$(cd "$state" && pwd)
log() { printf '[control-plane %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
# shellcheck source=pki.sh
source "$here/pki.sh"
api_host=10.244.0.1

if [[ -f $state/pids ]] && kill -0 $(cat "$state/pids") 2>/dev/null; then
  log "already running in $state"; exit 0
fi
rm -rf "$state/etcd" "$state/pids" "$state"/*.log

bin=$("$here/build.sh" | tail -n 1)

# The node bridge: the real node's pods live on it, and its address is the API server's.
if ! ip link show sg-br0 >/dev/null 2>&1; then
  log "creating the bridge sg-br0 ($api_host/24)"
  ip link add sg-br0 type bridge
fi
ip -4 addr show dev sg-br0 | grep -q "inet $api_host/24" || ip addr add "$api_host/24" dev sg-br0
ip link set sg-br0 up
# Service and fake pod addresses never leave the machine, whether kube-proxy runs or not:
# ClusterIPs go to the bridge (kube-proxy's rules translate them), kwok's pod IPs nowhere.
ip route replace 10.96.0.0/16 dev sg-br0 src "$api_host"
ip route replace unreachable 10.245.0.0/16

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
etcd_port=$(free_port); etcd_peer=$(free_port); kubelet_port=$(free_port)
# The API server's port must be free on the bridge address.
api_port=$(python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1])' "$api_host")

# Certificates: a CA, the API server's serving certificate and its client certificate for
# kubelets (system:masters), kwok's serving certificate, the service-account key pair.
pki=$state/pki
if [[ ! -f $pki/ca.crt ]]; then
  rm -rf "$pki"
  mkdir -p "$pki"
  log "creating the CA"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=securityguard-e2e-ca" \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
fi
issue_cert "$pki" apiserver kube-apiserver "" \
  "IP:$api_host,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.96.0.1"
issue_cert "$pki" apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
issue_cert "$pki" kwok-serving kwok "" "IP:127.0.0.1,DNS:localhost"
if [[ ! -f $pki/tokens.csv ]]; then
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  # Static tokens: token,user,uid,"groups"
  {
    echo "$(openssl rand -hex 16),admin,admin,\"system:masters\""
    echo "$(openssl rand -hex 16),system:kube-controller-manager,kcm"
    echo "$(openssl rand -hex 16),system:kube-scheduler,scheduler"
    echo "$(openssl rand -hex 16),kwok,kwok,\"system:masters\""
  } > "$pki/tokens.csv"
fi
token() { awk -F, -v u="$1" '$2==u {print $1}' "$pki/tokens.csv"; }
kubeconfig() { # user file
  cat > "$2" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://$api_host:$api_port
    certificate-authority: $pki/ca.crt
users:
- name: $1
  user:
    token: $(token "$1")
contexts:
- name: local
  context: {cluster: local, user: $1}
current-context: local
EOF
}
kubeconfig admin "$state/kubeconfig"
kubeconfig system:kube-controller-manager "$state/kcm.kubeconfig"
kubeconfig system:kube-scheduler "$state/scheduler.kubeconfig"
kubeconfig kwok "$state/kwok.kubeconfig"

start() { # name, command...
  local name=$1; shift
  "$@" >"$state/$name.log" 2>&1 &
  echo $! >> "$state/pids"
}

log "starting etcd on 127.0.0.1:$etcd_port"
start etcd "$bin/etcd" --name e2e --data-dir "$state/etcd" --unsafe-no-fsync \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-cluster "e2e=http://127.0.0.1:$etcd_peer" --log-level warn

log "starting kube-apiserver on https://$api_host:$api_port"
start kube-apiserver "$bin/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address "$api_host" --advertise-address "$api_host" --secure-port "$api_port" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" \
  --token-auth-file "$pki/tokens.csv" \
  --authorization-mode Node,RBAC \
  --enable-admission-plugins NodeRestriction,PodNodeSelector,PodTolerationRestriction \
  --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
  --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority "$pki/ca.crt" \
  --service-cluster-ip-range 10.96.0.0/16 \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --endpoint-reconciler-type lease \
  --kubelet-preferred-address-types InternalIP \
  --enable-priority-and-fairness=false \
  --profiling=false

for _ in $(seq 1 120); do
  if curl -fsS --cacert "$pki/ca.crt" -H "Authorization: Bearer $(token admin)" \
      "https://$api_host:$api_port/readyz" >/dev/null 2>&1; then break; fi
  kill -0 "$(sed -n 2p "$state/pids")" 2>/dev/null || { log "kube-apiserver exited:"; tail -20 "$state/kube-apiserver.log" >&2; exit 1; }
  sleep 0.5
done
curl -fsS --cacert "$pki/ca.crt" -H "Authorization: Bearer $(token admin)" "https://$api_host:$api_port/readyz" >/dev/null \
  || { log "kube-apiserver not ready after 60s"; tail -20 "$state/kube-apiserver.log" >&2; exit 1; }
log "kube-apiserver ready"

log "starting kube-controller-manager and kube-scheduler"
start kube-controller-manager "$bin/kube-controller-manager" \
  --kubeconfig "$state/kcm.kubeconfig" \
  --authentication-kubeconfig "$state/kcm.kubeconfig" --authorization-kubeconfig "$state/kcm.kubeconfig" \
  --root-ca-file "$pki/ca.crt" --service-account-private-key-file "$pki/sa.key" \
  --use-service-account-credentials --leader-elect=false --bind-address 127.0.0.1 --secure-port 0 \
  --controllers '*' \
  --concurrent-gc-syncs 10 --concurrent-deployment-syncs 10 --concurrent-replicaset-syncs 10
start kube-scheduler "$bin/kube-scheduler" \
  --kubeconfig "$state/scheduler.kubeconfig" \
  --authentication-kubeconfig "$state/scheduler.kubeconfig" --authorization-kubeconfig "$state/scheduler.kubeconfig" \
  --leader-elect=false --bind-address 127.0.0.1 --secure-port 0

# kwok is also its nodes' "kubelet" on 127.0.0.1:$kubelet_port (the nodes' InternalIP and
# kubeletEndpoint, HTTPS with a certificate of the cluster CA): the API server proxies pods/log
# there, and kwok answers every container with the lines of pod-logs.log (a ClusterLogs rule),
# honouring sinceSeconds, tailLines, timestamps.
log "starting kwok (pods/log server on 127.0.0.1:$kubelet_port)"
: > "$state/pod-logs.log"
cat > "$state/kwok-logs.yaml" <<EOF
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata:
  name: every-container
spec:
  logs:
  - logsFile: $state/pod-logs.log
EOF
# kwok's stages run the fake kubelet. Pods of SecurityGuard backup/restore Jobs are left
# Running: the e2e tests play the kubelet for them (they run the pod's command as a local
# process and write its exit status and termination message into the pod status).
# A container of the image $unpullable cannot be pulled, as on a real node (the domain
# .invalid never resolves): its pod stays Pending with the container waiting in
# ImagePullBackOff, as the kubelet reports it (stage pod-image-pull-backoff below; pod-ready
# leaves such pods alone).
unpullable=securityguard.invalid/api:unpullable
mkdir -p "$state/stages"
configs=(--config "$state/kwok-logs.yaml")
for f in "$bin"/stages/*.yaml; do
  out="$state/stages/$(basename "$f")"
  case $(basename "$f") in
    pod-complete.yaml)
      extra=$'    - key: \'.metadata.labels["securityguard.io/job"]\'\n      operator: \'DoesNotExist\'\n' ;;
    pod-ready.yaml)
      extra=$'    - key: \'.spec.containers.[].image\'\n      operator: \'NotIn\'\n      values: [\''"$unpullable"$'\']\n' ;;
    *) extra="" ;;
  esac
  python3 - "$f" "$out" "$extra" <<'PY'
import sys
text, extra = open(sys.argv[1]).read(), sys.argv[3]
anchor = "    matchExpressions:\n"
assert not extra or anchor in text, sys.argv[1] + ": stage without matchExpressions"
open(sys.argv[2], "w").write(text.replace(anchor, anchor + extra, 1))
PY
  configs+=(--config "$out")
done
# Templates of kwok (Go text/template): \$ is a template variable, not the shell's.
cat > "$state/stages/pod-image-pull-backoff.yaml" <<EOF
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-image-pull-backoff
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.podIP'
      operator: 'DoesNotExist'
    - key: '.spec.containers.[].image'
      operator: 'In'
      values: ['$unpullable']
  # The kubelet creates the sandbox before it fails to pull: the Deployment sees the pod
  # unavailable before the failure shows.
  delay:
    durationMilliseconds: 1000
  next:
    statusTemplate: |
      {{ \$now := Now }}
      conditions:
      - lastTransitionTime: {{ \$now | Quote }}
        status: "True"
        type: PodReadyToStartContainers
      - lastTransitionTime: {{ \$now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ \$now | Quote }}
        status: "False"
        reason: ContainersNotReady
        type: Ready
      - lastTransitionTime: {{ \$now | Quote }}
        status: "False"
        reason: ContainersNotReady
        type: ContainersReady
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        imageID: ""
        name: {{ .name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          waiting:
            {{ if eq .image "$unpullable" }}
            reason: ImagePullBackOff
            message: {{ printf "Back-off pulling image %q" .image | Quote }}
            {{ else }}
            reason: ContainerCreating
            {{ end }}
      {{ end }}
      hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
      podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
      phase: Pending
      startTime: {{ \$now | Quote }}
EOF
configs+=(--config "$state/stages/pod-image-pull-backoff.yaml")
start kwok "$bin/kwok" --kubeconfig "$state/kwok.kubeconfig" \
  --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
  --node-ip 127.0.0.1 --node-port "$kubelet_port" --server-address "127.0.0.1:$kubelet_port" \
  --tls-cert-file "$pki/kwok-serving.crt" --tls-private-key-file "$pki/kwok-serving.key" \
  --cidr 10.245.0.1/16 --node-lease-duration-seconds 40 "${configs[@]}"

export KUBECONFIG=$state/kubeconfig
for i in 0 1 2; do
  kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    topology.kubernetes.io/zone: zone-$((i % 3))
    type: kwok
spec:
  taints:
  - {key: kwok.x-k8s.io/node, value: fake, effect: NoSchedule}
status:
  allocatable: {cpu: "1000", memory: 4Ti, pods: "3000"}
  capacity: {cpu: "1000", memory: 4Ti, pods: "3000"}
  nodeInfo: {architecture: amd64, operatingSystem: linux, kubeletVersion: fake}
EOF
done

# Ready when the nodes are Ready and the default ServiceAccount exists (controllers are up).
kubectl wait --for=condition=Ready node -l type=kwok --timeout=60s >/dev/null
for _ in $(seq 1 120); do
  kubectl -n default get serviceaccount default >/dev/null 2>&1 && break
  sleep 0.5
done
kubectl -n default get serviceaccount default >/dev/null

cat > "$state/env" <<EOF
KUBECONFIG=$state/kubeconfig
SG_APISERVER=https://$api_host:$api_port
SG_CONTROLPLANE_DIR=$state
SG_POD_LOGS=$state/pod-logs.log
EOF
log "ready: export KUBECONFIG=$state/kubeconfig"
