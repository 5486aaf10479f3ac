#!/usr/bin/env bash
# Start-up times on the real node: a fresh control plane and node (timed), the operator from
# config/default, then RUNS SecurityGuards like examples/minimal.yaml, one after another, each
# in a fresh namespace: the time from `kubectl apply` to Ready=True, and for every pod the
# time to be scheduled, for its containers to start, and to be ready (from the pods' own
# timestamps). The images must be built (`just images` with SG_IMAGE_PROFILE).
#
#   scripts/bench-node.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
cache=${SG_CACHE:-$HOME/.cache/securityguard}
state=$cache/bench-node
log() { printf '[bench-node %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

for other in "$cache/e2e-node" "$cache/demo-controlplane" "$state"; do e2e/controlplane/down.sh "$other" 2>/dev/null || true; done
trap 'e2e/controlplane/down.sh "$state"' EXIT
t=$SECONDS; e2e/controlplane/up.sh "$state"; up=$((SECONDS - t))
t=$SECONDS; e2e/controlplane/node-up.sh "$state"; node=$((SECONDS - t))
export KUBECONFIG=$state/kubeconfig
t=$SECONDS
kubectl apply --server-side --force-conflicts -k config/default >/dev/null
kubectl wait --for=condition=Established crd/securityguards.securityguard.io --timeout=60s >/dev/null
kubectl -n securityguard-system rollout status deployment/securityguard-operator --timeout=180s >/dev/null
operator=$((SECONDS - t))
log "control plane ${up}s, node ${node}s (images included), operator available ${operator}s"

for i in $(seq 1 "$runs"); do
  ns=bench-node-$i
  kubectl create namespace "$ns" >/dev/null
  kubectl label namespace "$ns" pod-security.kubernetes.io/enforce=restricted >/dev/null
  kubectl -n "$ns" create secret generic securityguard-jwt --from-literal=secret="$(openssl rand -hex 32)" >/dev/null
  start=$(date +%s.%N)
  kubectl -n "$ns" apply -f examples/minimal.yaml >/dev/null
  kubectl -n "$ns" wait --for=condition=Ready securityguard/minimal --timeout=300s >/dev/null
  ready=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$start" "$(date +%s.%N)")
  log "run $i: minimal Ready ${ready}s after kubectl apply"
  kubectl -n "$ns" get pods -o json > "$state/pods-$i.json"
  python3 - "$state/pods-$i.json" <<'PY'
import json, sys
from datetime import datetime
def t(s): return datetime.fromisoformat(s.replace("Z", "+00:00"))
def cond(p, kind): return next((c["lastTransitionTime"] for c in p["status"].get("conditions", []) if c["type"] == kind), None)
print("  %-34s %9s %8s %6s  (seconds after the pod was created)" % ("pod", "scheduled", "started", "ready"))
for p in sorted(json.load(open(sys.argv[1]))["items"], key=lambda p: p["metadata"]["name"]):
    if p["status"].get("phase") != "Running":
        continue
    created = t(p["metadata"]["creationTimestamp"])
    started = max(t(c["state"]["running"]["startedAt"]) for c in p["status"]["containerStatuses"])
    print("  %-34s %9.0f %8.0f %6.0f" % (p["metadata"]["name"], (t(cond(p, "PodScheduled")) - created).total_seconds(),
          (started - created).total_seconds(), (t(cond(p, "Ready")) - created).total_seconds()))
PY
  kubectl delete namespace "$ns" --wait=false >/dev/null
done
