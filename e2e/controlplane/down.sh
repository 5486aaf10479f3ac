#!/usr/bin/env bash
# Stops the control plane started by up.sh in STATE_DIR (keeps its logs).
set -uo pipefail
state=${1:?usage: down.sh STATE_DIR}
[[ -f $state/pids ]] || exit 0
pids=$(tac "$state/pids")
kill $pids 2>/dev/null
for _ in $(seq 1 50); do
  kill -0 $pids 2>/dev/null || break
  sleep 0.2
done
kill -9 $pids 2>/dev/null
rm -f "$state/pids"
echo "[control-plane] stopped" >&2
