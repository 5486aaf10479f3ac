#!/usr/bin/env bash
# Rebuild the domain model from its pinned sources: fetch (into the cache, outside the
# repository), dataset, training, evaluation. Writes api-server/src/scan/domain_model.json,
# api-server/src/scan/domain_model_parity.tsv and detection/EVALUATION.md.
# Same inputs, same bytes: the run is single-threaded and nothing in the outputs depends on time.
# With --dataset-only: fetch and dataset only ($SG_CACHE/detection/dataset.tsv).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${SG_CACHE:-$HOME/.cache/securityguard}/detection
export DETECTION_CACHE=$cache
# One thread each, so that floating-point sums always run in the same order.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1
mkdir -p "$cache"
venv=$cache/venv
if ! "$venv/bin/python" -c 'import sklearn' 2>/dev/null ||
    ! cmp -s "$here/requirements.txt" "$venv/requirements.txt"; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
    cp "$here/requirements.txt" "$venv/requirements.txt"
fi
py=$venv/bin/python
"$py" "$here/pipeline/fetch.py"
"$py" "$here/pipeline/dataset.py"
# --dataset-only: stop here (`just eval-detection` needs the dataset, not a new model).
if [ "${1:-}" = "--dataset-only" ]; then exit 0; fi
"$py" "$here/pipeline/train.py"
