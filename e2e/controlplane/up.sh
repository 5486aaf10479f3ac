#!/usr/bin/env bash
# Starts a local Kubernetes control plane on loopback: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and kwok (three fake nodes that run no containers but
# make pods Running/Ready and Job pods Succeeded, and serve pods/log from a file: see below).
#
#   e2e/controlplane/up.sh STATE_DIR     start (builds the binaries first if needed)
#   e2e/controlplane/down.sh STATE_DIR   stop
#
# STATE_DIR receives the certificates, logs, etcd data and:
#   kubeconfig       an administrator (system:masters) kubeconfig
#   env              KUBECONFIG=..., SG_APISERVER=https://127.0.0.1:PORT, SG_CONTROLPLANE_DIR=...,
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

if [[ -f $state/pids ]] && kill -0 $(cat "$state/pids") 2>/dev/null; then
  log "already running in $state"; exit 0
fi
rm -rf "$state/etcd" "$state/pids" "$state"/*.log

bin=$("$here/build.sh" | tail -n 1)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
etcd_port=$(free_port); etcd_peer=$(free_port); api_port=$(free_port); kubelet_port=$(free_port)

# Certificates: a CA, the API server's serving certificate, the service-account key pair.
pki=$state/pki
if [[ ! -f $pki/apiserver.crt ]]; then
  mkdir -p "$pki"
  log "creating certificates"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=securityguard-e2e-ca" \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
    -keyout "$pki/apiserver.key" -out "$pki/apiserver.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc,IP:10.96.0.1\n' > "$pki/san.ext"
  openssl x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -extfile "$pki/san.ext" -out "$pki/apiserver.crt" 2>/dev/null
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
    server: https://127.0.0.1:$api_port
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

log "starting kube-apiserver on https://127.0.0.1:$api_port"
start kube-apiserver "$bin/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" \
  --token-auth-file "$pki/tokens.csv" \
  --authorization-mode RBAC \
  --service-cluster-ip-range 10.96.0.0/16 \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --endpoint-reconciler-type none \
  --kubelet-preferred-address-types InternalIP \
  --enable-priority-and-fairness=false \
  --profiling=false

for _ in $(seq 1 120); do
  if curl -fsS --cacert "$pki/ca.crt" -H "Authorization: Bearer $(token admin)" \
      "https://127.0.0.1:$api_port/readyz" >/dev/null 2>&1; then break; fi
  kill -0 "$(sed -n 2p "$state/pids")" 2>/dev/null || { log "kube-apiserver exited:"; tail -20 "$state/kube-apiserver.log" >&2; exit 1; }
  sleep 0.5
done
curl -fsS --cacert "$pki/ca.crt" -H "Authorization: Bearer $(token admin)" "https://127.0.0.1:$api_port/readyz" >/dev/null \
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

# kwok is also the nodes' "kubelet" on 127.0.0.1:$kubelet_port (the nodes' InternalIP and
# kubeletEndpoint): the API server proxies pods/log there, and kwok answers every container with
# the lines of pod-logs.log (a ClusterLogs rule), honouring sinceSeconds, tailLines, timestamps.
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
start kwok "$bin/kwok" --kubeconfig "$state/kwok.kubeconfig" --manage-all-nodes \
  --node-ip 127.0.0.1 --node-port "$kubelet_port" --server-address "127.0.0.1:$kubelet_port" \
  --cidr 10.244.0.1/16 --node-lease-duration-seconds 40 "${configs[@]}"

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
status:
  allocatable: {cpu: "1000", memory: 4Ti, pods: "3000"}
  capacity: {cpu: "1000", memory: 4Ti, pods: "3000"}
  nodeInfo: {architecture: amd64, operatingSystem: linux, kubeletVersion: fake}
EOF
done

# Ready when the nodes are Ready and the default ServiceAccount exists (controllers are up).
kubectl wait --for=condition=Ready node --all --timeout=60s >/dev/null
for _ in $(seq 1 120); do
  kubectl -n default get serviceaccount default >/dev/null 2>&1 && break
  sleep 0.5
done
kubectl -n default get serviceaccount default >/dev/null

cat > "$state/env" <<EOF
KUBECONFIG=$state/kubeconfig
SG_APISERVER=https://127.0.0.1:$api_port
SG_CONTROLPLANE_DIR=$state
SG_POD_LOGS=$state/pod-logs.log
EOF
log "ready: export KUBECONFIG=$state/kubeconfig"
