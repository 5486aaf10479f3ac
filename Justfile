# SecurityGuard: operator, API service and their tests. `just --list` shows the recipes.
# Caches live outside the clone, in $SG_CACHE (default ~/.cache/securityguard).

set shell := ["bash", "-euo", "pipefail", "-c"]

cache := env_var_or_default("SG_CACHE", env_var("HOME") + "/.cache/securityguard")
export SG_CACHE := cache
export CARGO_TARGET_DIR := env_var_or_default("CARGO_TARGET_DIR", cache + "/target")
export CARGO_TERM_COLOR := env_var_or_default("CARGO_TERM_COLOR", "never")
operator := CARGO_TARGET_DIR + "/debug/securityguard-operator"

default:
    @just --list

# Everything the tests need on this machine (Debian packages, the control plane binaries).
prepare:
    scripts/prepare.sh

# Regenerate crds/ from the Rust types (a test fails when they differ).
crds:
    cargo build -q -p securityguard-operator
    {{operator}} crd > crds/securityguard.io_securityguards.yaml

# Regenerate config/prometheus/operator.yaml from the Rust rules (a test fails when they differ).
monitoring:
    cargo build -q -p securityguard-operator
    {{operator}} monitoring operator-manifests > config/prometheus/operator.yaml

# All tests: unit tests, the API and the backups against real PostgreSQL, Redis and an
# S3-compatible server, the operator's end-to-end tests against a local control plane with kwok
# nodes, and the end-to-end tests on a real node (the images built from our Dockerfiles, run by
# a kubelet, containerd and runc).
test: prepare
    #!/usr/bin/env bash
    set -euo pipefail
    scripts/services/start.sh
    scripts/services/s3.sh start
    set -a; source "$SG_CACHE/services/env"; source "$SG_CACHE/services/s3.env"; set +a
    source scripts/e2e-clusters.sh
    log="$SG_CACHE/test-output.log"
    set +e
    cargo test --workspace --no-fail-fast 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    set -e
    if [ "$status" -eq 0 ]; then api-server/fuzz/run.sh 30; fi
    # One closing line for the whole run (cargo prints one per test binary).
    awk '/^test result:/ {p += $4; f += $6} END {printf "tests: %d passed, %d failed\n", p, f}' "$log"
    exit "$status"

# Fuzz the API's transaction decoder for SECONDS (nightly toolchain, cargo-fuzz).
fuzz SECONDS="60":
    api-server/fuzz/run.sh {{SECONDS}}

# Only the operator's end-to-end tests (fresh clusters: kwok nodes, and a real node; the
# monitoring test also runs the API against the local PostgreSQL and Redis).
e2e: prepare
    #!/usr/bin/env bash
    set -euo pipefail
    scripts/services/start.sh
    scripts/services/s3.sh start
    set -a; source "$SG_CACHE/services/env"; source "$SG_CACHE/services/s3.env"; set +a
    source scripts/e2e-clusters.sh
    cargo test -p securityguard-e2e --no-fail-fast

# A local demo: control plane, operator (with its own ServiceAccount), the minimal example.
demo: prepare
    scripts/demo.sh

# Stop the demo (its node, its containers and its control plane).
demo-down:
    e2e/controlplane/down.sh "$SG_CACHE/demo-controlplane"

# Benchmark the operator (two replicas) with N SecurityGuards against the same objects applied
# directly, each side on a fresh local control plane of its own (BENCHMARKS.md).
bench-operator N="100": prepare
    #!/usr/bin/env bash
    set -euo pipefail
    state="$SG_CACHE/bench-controlplane"
    results="$SG_CACHE/bench-operator"
    mkdir -p "$results"
    e2e/controlplane/down.sh "$state" 2>/dev/null || true
    trap 'e2e/controlplane/down.sh "$state"' EXIT
    cargo build --release -p securityguard-operator
    cargo build --release -p securityguard-e2e --bin bench-operator
    bench="$CARGO_TARGET_DIR/release/bench-operator"
    # Each side on a fresh control plane of its own: neither inherits the other's pods.
    for side in operator direct; do
      echo "[bench-operator] $side side: a fresh control plane" >&2
      e2e/controlplane/down.sh "$state" 2>/dev/null || true
      e2e/controlplane/up.sh "$state"
      SG_CONTROLPLANE_DIR="$state" SG_OPERATOR_BIN="$CARGO_TARGET_DIR/release/securityguard-operator" \
        "$bench" "$side" {{N}} "$results/$side-{{N}}.json"
    done
    "$bench" report {{N}} "$results/operator-{{N}}.json" "$results/direct-{{N}}.json"

# Start-up on the real node: control plane, node, operator, and RUNS minimal SecurityGuards
# (apply to Ready, and each pod's scheduling, container start and readiness) (BENCHMARKS.md).
bench-node RUNS="3": prepare
    cargo build -p securityguard-operator -p securityguard-api
    SG_IMAGE_PROFILE=debug scripts/bench-node.sh {{RUNS}}

# Benchmark backups on a database of at least SIZE_MB (cached between runs): backup to a fresh S3
# server against `pg_dump > /dev/null` and `pg_dump | gzip | aws s3 cp -`, restore against plain
# pg_restore (BENCHMARKS.md).
bench-backup SIZE_MB="1024": prepare
    cargo build --release -p securityguard-operator
    SG_OPERATOR_BIN="$CARGO_TARGET_DIR/release/securityguard-operator" scripts/bench-backup.sh {{SIZE_MB}}

# Benchmark point-in-time recovery on a database of SIZE_MB (1024): the
# recovery point under a steady write load, and `restore --point-in-time` from S3 against the same
# recovery by hand from local copies (BENCHMARKS.md).
bench-pitr SIZE_MB="1024": prepare
    cargo build --release -p securityguard-operator
    SG_OPERATOR_BIN="$CARGO_TARGET_DIR/release/securityguard-operator" scripts/bench-pitr.sh {{SIZE_MB}}

# Benchmark the API (scans with cache hit and miss, /health/live as the ceiling) against the
# local PostgreSQL and Redis (BENCHMARKS.md).
bench-api: prepare
    #!/usr/bin/env bash
    set -euo pipefail
    scripts/services/start.sh
    if ! command -v wrk >/dev/null; then
      echo "[bench-api] installing wrk (the load generator)" >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
    fi
    set -a; source "$SG_CACHE/services/env"; set +a
    echo "[bench-api] building the release API and the benchmark" >&2
    cargo build --release -p securityguard-api --bin securityguard-api --example bench
    cargo run -q --release -p securityguard-api --example bench

# Rebuild the domain-risk model from its pinned, openly licensed data (detection/DATA.md): fetch
# into $SG_CACHE/detection, time-split dataset, training, evaluation. Rewrites
# api-server/src/scan/domain_model.json (+ the parity vectors) and detection/EVALUATION.md;
# deterministic, so an unchanged input gives unchanged files. Then check the Rust scorer agrees.
train-domain-model:
    nice -n 10 detection/train.sh
    cargo test -q -p securityguard-api --lib scan::model

# Evaluate the served domain model with the API's Rust scorer on the training pipeline's
# time-split test set (re-derived from the pinned sources when missing): precision, recall,
# false-positive rate and ROC-AUC, of the model alone and of the whole domain scan (BENCHMARKS.md).
# SPLIT=validation evaluates the validation split instead, where the scan's settings are chosen.
eval-detection SPLIT="test":
    #!/usr/bin/env bash
    set -euo pipefail
    if [ ! -f "$SG_CACHE/detection/dataset.tsv" ]; then nice -n 10 detection/train.sh --dataset-only; fi
    nice -n 10 cargo run -q --release -p securityguard-api --example eval-detection -- "$SG_CACHE/detection/dataset.tsv" {{SPLIT}}

# Score a list of your own (one host or URL a line, `#` comments) as `POST /v1/scan/domains`
# would: a line per host (action, the model's probability, the official domain covering it, the
# warnings' kinds) and the count of each action. For names the product has never seen.
score-domains FILE:
    nice -n 10 cargo run -q --release -p securityguard-api --example eval-detection -- --hosts {{FILE}}

# Every container image the cluster needs, built from Debian packages and our binaries without a
# registry (images/README.md): archives in $SG_CACHE/images, loaded by `images/load.sh SOCKET`.
images:
    images/build.sh

# Run the images (runc bundles, no node needed) and load them into a private containerd.
images-test: images
    images/smoke-test.sh
    images/test-load.sh

# Prove that our Dockerfiles build from source (BINARIES=source) with buildah, on a
# rust:1.95-bookworm made from Debian and this machine's toolchain. Slow; not part of the tests.
images-from-source:
    images/from-source.sh

# Lints: formatting and clippy with warnings as errors.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
    scripts/import-cycles.py operator/src api-server/src
