#!/usr/bin/env bash
# Fuzz the transaction decoder for a bounded time: fuzz/run.sh [seconds] (default 60).
# Needs the nightly toolchain; installs cargo-fuzz when missing. The seed corpus is the labelled
# fixture set; crashes are left in fuzz/artifacts and fail the run.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_TO_RUN="${1:-60}"
CACHE="${SG_CACHE:-$HOME/.cache/securityguard}"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "[fuzz] the nightly toolchain is required (rustup toolchain install nightly)" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "[fuzz] installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

CORPUS="$CACHE/fuzz-corpus/decode_transaction"
mkdir -p "$CORPUS"
echo "[fuzz] writing the seed corpus to $CORPUS"
(cd .. && SG_FUZZ_CORPUS="$CORPUS" CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target-api}" \
    cargo test -q -p securityguard-api --test api -- --ignored write_fuzz_corpus)

echo "[fuzz] running decode_transaction for ${SECONDS_TO_RUN}s"
CARGO_TARGET_DIR="$CACHE/target-fuzz" cargo +nightly fuzz run decode_transaction "$CORPUS" -- \
    -max_total_time="$SECONDS_TO_RUN" -max_len=1232
