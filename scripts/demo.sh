#!/usr/bin/env bash
# A local demo: starts the control plane, installs config/default, runs the operator with its
# own ServiceAccount's token, applies examples/minimal.yaml and shows what the operator made.
# Stop it with `scripts/just demo-down`.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${SG_CACHE:-$HOME/.cache/securityguard}
state=$cache/demo-controlplane
ns=securityguard-demo
log() { printf '[demo] %s\n' "$*" >&2; }

e2e/controlplane/up.sh "$state"
export KUBECONFIG=$state/kubeconfig
log "building the operator"
cargo build -q -p securityguard-operator
operator=${CARGO_TARGET_DIR:-$cache/target}/debug/securityguard-operator

log "installing config/default (CRD, RBAC, manager)"
kubectl apply --server-side --force-conflicts -k config/default >/dev/null
kubectl wait --for=condition=Established crd/securityguards.securityguard.io --timeout=60s >/dev/null

kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl label namespace "$ns" pod-security.kubernetes.io/enforce=restricted --overwrite >/dev/null
kubectl -n "$ns" get secret securityguard-jwt >/dev/null 2>&1 \
  || kubectl -n "$ns" create secret generic securityguard-jwt --from-literal=secret="$(openssl rand -hex 32)" >/dev/null
# No storage provisioner runs here: volumes for the datastores' claims, made by hand.
for claim in data-minimal-postgres-0 data-minimal-redis-0; do
  kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: PersistentVolume
metadata: {name: $ns-$claim}
spec:
  capacity: {storage: 100Gi}
  accessModes: [ReadWriteOnce]
  hostPath: {path: /tmp/$ns/$claim}
  claimRef: {namespace: $ns, name: $claim}
YAML
done

if ! { [[ -f $state/operator.pid ]] && kill -0 "$(cat "$state/operator.pid")" 2>/dev/null; }; then
  log "starting the operator as system:serviceaccount:securityguard-system:securityguard-operator"
  token=$(kubectl -n securityguard-system create token securityguard-operator --duration=24h)
  server=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
  cat > "$state/operator.kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "$server", certificate-authority: "$state/pki/ca.crt"}}]
users: [{name: operator, user: {token: "$token"}}]
contexts: [{name: local, context: {cluster: local, user: operator}}]
current-context: local
YAML
  KUBECONFIG=$state/operator.kubeconfig POD_NAMESPACE=securityguard-system POD_NAME=demo-operator \
    SG_HTTP_ADDR=127.0.0.1:18080 nohup "$operator" run > "$state/operator.log" 2>&1 &
  echo $! > "$state/operator.pid"
  echo $! >> "$state/pids"
fi

log "applying examples/minimal.yaml"
kubectl -n "$ns" apply -f examples/minimal.yaml >/dev/null
kubectl -n "$ns" wait --for=condition=Ready securityguard/minimal --timeout=180s >/dev/null

echo
kubectl -n "$ns" get securityguards
echo
kubectl -n "$ns" get deployments,statefulsets,services,hpa,pdb,networkpolicies,configmaps,secrets,pods
echo
kubectl -n "$ns" get securityguard minimal -o jsonpath='{.status}' | python3 -m json.tool
cat <<EOF2

The demo runs on: export KUBECONFIG=$state/kubeconfig
Operator metrics: curl -s http://127.0.0.1:18080/metrics   (log: $state/operator.log)
Stop it with:     scripts/just demo-down
EOF2
