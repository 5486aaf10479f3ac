#!/usr/bin/env bash
# Proves the real node that node-up.sh started in STATE_DIR, every wait bounded; exits non-zero
# at the first failure (with the objects' state), 0 when all pass:
#   - in a namespace enforcing the restricted Pod Security level, a pod with a restricted
#     security context (uid 65532, read-only root filesystem, no capabilities, RuntimeDefault
#     seccomp) runs debian:bookworm-slim, serves HTTP and writes into a PersistentVolumeClaim
#     without a storage class (bound by local-path);
#   - `kubectl logs` and `kubectl exec` work on it;
#   - DNS from pods: kubernetes.default.svc.cluster.local and a Service of another namespace;
#   - a ClusterIP Service reached from the host, from a pod of another namespace and from its
#     own pod (hairpin); the `kubernetes` Service (10.96.0.1:443) reached from a pod, and, when
#     the postgres:15 image (it has openssl) is in containerd, an HTTPS request to it that
#     verifies the API server's certificate and authenticates with the pod's token;
#   - a pod of a namespace that opts in to kwok nodes lands on one and becomes Running.
#
#   e2e/controlplane/node-check.sh STATE_DIR
set -euo pipefail
state=${1:?usage: node-check.sh STATE_DIR}
state=$(cd "$state" && pwd)
[[ -f $state/node-env ]] || { echo "node-check.sh: no node in $state (run node-up.sh)" >&2; exit 1; }
KUBECONFIG=$(sed -n 's/^KUBECONFIG=//p' "$state/env")
export KUBECONFIG
node=$(sed -n 's/^SG_NODE=//p' "$state/node-env")
image=${SG_CHECK_IMAGE:-docker.io/library/debian:bookworm-slim}
ns=sg-check
other=sg-check-other
kwok=sg-check-kwok
t_start=$(date +%s.%N)

log() { printf '[node-check %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
elapsed() { python3 -c 'import sys,time; print(f"{time.time()-float(sys.argv[1]):.1f}s")' "$1"; }
fail() {
  log "FAILED: $*"
  kubectl get pods,pvc,svc -n "$ns" -o wide >&2 2>&1 || true
  kubectl get pods -n "$other" -o wide >&2 2>&1 || true
  kubectl get events -n "$ns" --sort-by=.lastTimestamp 2>/dev/null | tail -n 15 >&2 || true
  exit 1
}
# retry SECONDS DESCRIPTION COMMAND...: until COMMAND succeeds, every 0.5 s.
retry() {
  local secs=$1 what=$2 t0; shift 2
  t0=$(date +%s.%N)
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { "$@" >&2 || true; fail "$what (not after ${secs}s)"; }
    sleep 0.5
  done
  log "ok: $what ($(elapsed "$t0"))"
}
in_pod() { # namespace pod script
  kubectl exec -n "$1" "$2" -- bash -c "$3"
}

log "removing the namespaces of a previous run"
kubectl delete namespace "$ns" "$other" "$kwok" --ignore-not-found --timeout=120s >/dev/null \
  || fail "old check namespaces not deleted"

restricted_ctx='securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    seccompProfile: {type: RuntimeDefault}'
container_ctx='securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities: {drop: [ALL]}'
# A small HTTP server in perl (perl-base is in every Debian image).
server='set -eu
echo "hello from $HOSTNAME" > /data/hello
exec perl -e '"'"'
use IO::Socket::INET; $| = 1;
my $s = IO::Socket::INET->new(LocalPort => 8080, Listen => 16, ReuseAddr => 1) or die "listen: $!";
print "serving on 8080\n";
while (my $c = $s->accept) {
  while (my $l = <$c>) { last if $l =~ /^\r?\n$/ }
  print $c "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello from $ENV{HOSTNAME}\n";
  close $c;
}'"'"

t0=$(date +%s.%N)
kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $ns
  labels: {pod-security.kubernetes.io/enforce: restricted}
---
apiVersion: v1
kind: Namespace
metadata:
  name: $other
  labels: {pod-security.kubernetes.io/enforce: restricted}
---
apiVersion: v1
kind: Namespace
metadata:
  name: $kwok
  annotations:
    scheduler.alpha.kubernetes.io/node-selector: type=kwok
    scheduler.alpha.kubernetes.io/defaultTolerations: '[{"key":"kwok.x-k8s.io/node","operator":"Exists","effect":"NoSchedule"}]'
EOF
for n in "$ns" "$other" "$kwok"; do
  retry 30 "serviceaccount default in $n" kubectl -n "$n" get serviceaccount default
done

kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: $ns}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 16Mi}}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: $ns}
spec:
  selector: {app: echo}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: echo, namespace: $ns, labels: {app: echo}}
spec:
  $restricted_ctx
  terminationGracePeriodSeconds: 1
  containers:
  - name: echo
    image: $image
    command: [bash, -c, $(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$server")]
    ports: [{containerPort: 8080}]
    readinessProbe:
      tcpSocket: {port: 8080}
      periodSeconds: 1
    $container_ctx
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: data}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: $other}
spec:
  $restricted_ctx
  terminationGracePeriodSeconds: 1
  containers:
  - name: client
    image: $image
    command: [sleep, infinity]
    $container_ctx
---
apiVersion: v1
kind: Pod
metadata: {name: fake, namespace: $kwok}
spec:
  containers:
  - name: fake
    image: $image
EOF

kubectl -n "$other" wait --for=condition=Ready pod/client --timeout=90s >/dev/null \
  || fail "pod $other/client not Ready"
log "ok: a restricted pod without volumes Ready $(elapsed "$t0") after its creation"
kubectl -n "$ns" wait --for=condition=Ready pod/echo --timeout=150s >/dev/null \
  || fail "pod $ns/echo (with the local-path volume) not Ready"
log "ok: the restricted pod with a new local-path volume Ready $(elapsed "$t0") after its creation"
[[ $(kubectl -n "$ns" get pod echo -o jsonpath='{.spec.nodeName}') == "$node" ]] || fail "echo is not on $node"
[[ $(kubectl -n "$ns" get pvc data -o jsonpath='{.status.phase}') == Bound ]] || fail "PVC data not Bound"
[[ $(kubectl -n "$ns" get pvc data -o jsonpath='{.spec.storageClassName}') == local-path ]] \
  || fail "PVC data did not get the default StorageClass local-path"
log "ok: PVC data Bound by local-path"

retry 20 "kubectl logs" sh -c "kubectl -n $ns logs echo | grep -q 'serving on 8080'"
out=$(in_pod "$ns" echo 'cat /data/hello; id -u; grep -E "^(Seccomp|CapEff):" /proc/1/status; touch /x 2>&1 || true') \
  || fail "kubectl exec"
grep -q "hello from echo" <<<"$out" || fail "the file written into the volume: $out"
grep -qx 65532 <<<"$out" || fail "uid in the pod: $out"
grep -qP '^Seccomp:\t2$' <<<"$out" || fail "no seccomp filter in the pod: $out"
grep -qP '^CapEff:\t0+$' <<<"$out" || fail "capabilities left in the pod: $out"
grep -q 'Read-only file system' <<<"$out" || fail "root filesystem not read-only: $out"
log "ok: kubectl exec; the volume holds the pod's file; uid 65532, seccomp filter, no capabilities, read-only root"

retry 30 "DNS: kubernetes.default.svc.cluster.local from a pod" \
  in_pod "$other" client 'getent hosts kubernetes.default.svc.cluster.local | grep -q "^10.96.0.1 "'
ip=$(kubectl -n "$ns" get service echo -o jsonpath='{.spec.clusterIP}')
retry 30 "DNS: echo.$ns (another namespace's Service) from a pod" \
  in_pod "$other" client "getent hosts echo.$ns.svc.cluster.local | grep -q '^$ip '"
get="exec 3<>/dev/tcp/echo.$ns.svc.cluster.local/80; printf 'GET / HTTP/1.0\r\n\r\n' >&3; timeout 5 cat <&3"
retry 30 "Service echo ($ip) from the host" sh -c "curl -fsS --max-time 3 http://$ip/ | grep -q 'hello from echo'"
retry 30 "Service echo from a pod of another namespace" \
  sh -c "kubectl exec -n $other client -- timeout 10 bash -c \"\$0\" | grep -q 'hello from echo'" "$get"
retry 30 "Service echo from its own pod (hairpin)" \
  sh -c "kubectl exec -n $ns echo -- timeout 10 bash -c \"\$0\" | grep -q 'hello from echo'" "$get"
retry 30 "Service kubernetes (10.96.0.1:443) from a pod" \
  in_pod "$other" client 'timeout 5 bash -c "exec 3<>/dev/tcp/10.96.0.1/443"'

tls_image=docker.io/library/postgres:15
sock=$(sed -n 's/^SG_CONTAINERD_SOCKET=//p' "$state/node-env")
if ctr -a "$sock" -n k8s.io images ls -q 2>/dev/null | grep -qxF "$tls_image"; then
  kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: tls, namespace: $other}
spec:
  $restricted_ctx
  terminationGracePeriodSeconds: 1
  containers:
  - name: tls
    image: $tls_image
    command: [sleep, infinity]
    $container_ctx
EOF
  kubectl -n "$other" wait --for=condition=Ready pod/tls --timeout=60s >/dev/null || fail "pod $other/tls not Ready"
  readyz='sa=/var/run/secrets/kubernetes.io/serviceaccount
printf "GET /readyz HTTP/1.1\r\nHost: kubernetes.default.svc\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n" "$(cat $sa/token)" \
  | timeout 10 openssl s_client -quiet -verify_return_error -verify_hostname kubernetes.default.svc \
      -CAfile $sa/ca.crt -connect "$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT" 2>&1'
  retry 30 "HTTPS to the kubernetes Service from a pod (certificate verified, the pod's token)" \
    sh -c "kubectl exec -n $other tls -- sh -c \"\$0\" | tail -n 1 | grep -qx ok" "$readyz"
else
  log "skipped: HTTPS to the kubernetes Service from a pod ($tls_image is not in containerd)"
fi

kubectl -n "$kwok" wait --for=condition=Ready pod/fake --timeout=60s >/dev/null || fail "pod $kwok/fake not Ready"
where=$(kubectl -n "$kwok" get pod fake -o jsonpath='{.spec.nodeName}')
[[ $where == kwok-node-* ]] || fail "pod $kwok/fake runs on $where, not on a kwok node"
log "ok: the pod of a namespace opting in to kwok nodes is Running on $where"

kubectl delete namespace "$ns" "$other" "$kwok" --wait=false >/dev/null
log "all checks passed in $(elapsed "$t_start")"
