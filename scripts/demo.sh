#!/usr/bin/env bash
# A local demo on a real node: starts the control plane and the node (kubelet, containerd, runc,
# kube-proxy, CoreDNS, a storage provisioner), builds the images, installs the operator from
# config/default as users do (its Deployment, two replicas, leader election), applies
# examples/minimal.yaml, and ends with a scan verdict fetched from the running API pods.
# Stop it with `scripts/just demo-down`.
#
# The images carry the debug binaries the tests use (built once for both); for release binaries:
#   SG_IMAGE_PROFILE=release scripts/just demo
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${SG_CACHE:-$HOME/.cache/securityguard}
state=$cache/demo-controlplane
ns=securityguard-demo
profile=${SG_IMAGE_PROFILE:-debug}
target=${CARGO_TARGET_DIR:-$cache/target}
log() { printf '[demo %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
t0=$SECONDS

# One real node per machine: the tests' clusters are stopped first.
for other in "$cache/e2e-node" "$cache/e2e-controlplane"; do e2e/controlplane/down.sh "$other" 2>/dev/null || true; done
log "building the operator, the API and the wallet client ($profile)"
flag=(); [[ $profile == release ]] && flag=(--release)
cargo build -q "${flag[@]}" -p securityguard-operator -p securityguard-api
cargo build -q -p securityguard-e2e --bin wallet-scan
e2e/controlplane/up.sh "$state"
SG_IMAGE_PROFILE=$profile e2e/controlplane/node-up.sh "$state"
export KUBECONFIG=$state/kubeconfig

log "installing config/default (CRD, RBAC, the operator's Deployment)"
kubectl apply --server-side --force-conflicts -k config/default >/dev/null
kubectl wait --for=condition=Established crd/securityguards.securityguard.io --timeout=60s >/dev/null
if ! kubectl -n securityguard-system rollout status deployment/securityguard-operator --timeout=180s >/dev/null; then
  kubectl -n securityguard-system get pods -o wide >&2
  kubectl -n securityguard-system logs deployment/securityguard-operator --tail=30 >&2 || true
  log "the operator did not become available"; exit 1
fi

kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl label namespace "$ns" pod-security.kubernetes.io/enforce=restricted --overwrite >/dev/null
kubectl -n "$ns" get secret securityguard-jwt >/dev/null 2>&1 \
  || kubectl -n "$ns" create secret generic securityguard-jwt --from-literal=secret="$(openssl rand -hex 32)" >/dev/null

log "applying examples/minimal.yaml"
kubectl -n "$ns" apply -f examples/minimal.yaml >/dev/null
if ! kubectl -n "$ns" wait --for=condition=Ready securityguard/minimal --timeout=300s >/dev/null; then
  kubectl -n "$ns" get pods,pvc -o wide >&2
  kubectl -n "$ns" get securityguard minimal -o jsonpath='{.status.conditions}' >&2; echo >&2
  log "minimal is not Ready"; exit 1
fi

echo
kubectl -n "$ns" get securityguards
echo
kubectl -n "$ns" get deployments,statefulsets,services,hpa,pdb,networkpolicies,pvc,pods -o wide
api=$(kubectl -n "$ns" get service minimal-api -o jsonpath='http://{.spec.clusterIP}:{.spec.ports[0].port}')
for _ in $(seq 1 60); do curl -fsS -o /dev/null --max-time 2 "$api/health/ready" && break; sleep 1; done
echo
echo "A wallet signs in and scans two domains through the API's Service ($api):"
"$target/debug/wallet-scan" "$api" phant0m.app solana.com
cat <<EOF2

The demo ran in $((SECONDS - t0)) s. It runs on:  export KUBECONFIG=$state/kubeconfig
The API, from this shell (kube-proxy routes the Service's address to the pods):
  curl $api/health/detailed
  kubectl -n $ns port-forward service/minimal-api 8080:80    # then http://127.0.0.1:8080
The operator:  kubectl -n securityguard-system logs deployment/securityguard-operator
Stop it with:  scripts/just demo-down
EOF2
