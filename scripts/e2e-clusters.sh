# Sourced by the `test` and `e2e` recipes: builds the binaries, starts the two clusters the
# end-to-end tests run against, stops them when the calling shell exits, and exports
#   SG_CONTROLPLANE_DIR   a control plane with kwok nodes (tests that run the operator as a
#                         local process, scale, many pods)
#   SG_NODE_CLUSTER_DIR   a control plane with the real node (the operator installed from
#                         config/default, pods in containers of the images built from our
#                         Dockerfiles with the binaries just built)
# Both are fresh at every run. Only one real node runs on a machine: a running demo is stopped.
# shellcheck shell=bash
_sg_kwok="$SG_CACHE/e2e-controlplane"
_sg_node="$SG_CACHE/e2e-node"
for _sg_state in "$_sg_node" "$_sg_kwok" "$SG_CACHE/demo-controlplane"; do
  e2e/controlplane/down.sh "$_sg_state" 2>/dev/null || true
done
trap 'e2e/controlplane/down.sh "$_sg_node"; e2e/controlplane/down.sh "$_sg_kwok"' EXIT
echo "[e2e $(date +%H:%M:%S)] building the operator and the API (the images take these binaries)" >&2
cargo build -p securityguard-operator -p securityguard-api
e2e/controlplane/up.sh "$_sg_kwok"
e2e/controlplane/up.sh "$_sg_node"
# The images carry the binaries the tests were built with (no second compile).
SG_IMAGE_PROFILE=debug e2e/controlplane/node-up.sh "$_sg_node"
export SG_CONTROLPLANE_DIR="$_sg_kwok" SG_NODE_CLUSTER_DIR="$_sg_node"
