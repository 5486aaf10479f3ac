#!/usr/bin/env bash
# An S3-compatible server for the backup tests: moto's server (from PyPI) as a local process on
# loopback, installed into a virtualenv under ${SG_CACHE:-$HOME/.cache/securityguard}/venv-moto
# (outside the clone).
#
#   scripts/services/s3.sh start   # idempotent: a server already answering is left alone
#   scripts/services/s3.sh stop    # idempotent: nothing running is fine
#
# `start` writes the endpoint and the (dummy) credentials to $SG_CACHE/services/s3.env; use it with
#   source "${SG_CACHE:-$HOME/.cache/securityguard}/services/s3.env"
set -euo pipefail

SG_CACHE="${SG_CACHE:-$HOME/.cache/securityguard}"
DIR="$SG_CACHE/services/s3"
ENV_FILE="$SG_CACHE/services/s3.env"
VENV="$SG_CACHE/venv-moto"
PORT="${SG_S3_PORT:-55900}"
MOTO_VERSION="${SG_MOTO_VERSION:-5.2.5}"
ENDPOINT="http://127.0.0.1:$PORT"

log() { echo "[s3] $*"; }

# moto answers any path; the root lists the buckets (an empty ListAllMyBucketsResult).
answering() { curl -fsS -o /dev/null --max-time 2 "$ENDPOINT/" 2>/dev/null; }

install_moto() {
    if [ -x "$VENV/bin/moto_server" ]; then
        return 0
    fi
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        log "installing python3-venv (Debian package)"
        if [ "$(id -u)" -ne 0 ]; then
            echo "[s3] need root to install python3-venv" >&2
            exit 1
        fi
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq python3-venv >/dev/null
    fi
    log "creating virtualenv $VENV"
    python3 -m venv "$VENV"
    log "installing moto[server]==$MOTO_VERSION from PyPI (about a minute)"
    "$VENV/bin/pip" install --disable-pip-version-check --progress-bar off -q "moto[server]==$MOTO_VERSION"
}

start() {
    mkdir -p "$DIR"
    if answering; then
        log "already running on $ENDPOINT"
    else
        install_moto
        log "starting moto_server on $ENDPOINT (log: $DIR/moto.log)"
        # setsid: the server outlives this script and the shell that called it.
        setsid "$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >"$DIR/moto.log" 2>&1 </dev/null &
        echo $! >"$DIR/moto.pid"
        local i
        for i in $(seq 1 120); do
            if answering; then break; fi
            if ! kill -0 "$(cat "$DIR/moto.pid")" 2>/dev/null; then
                echo "[s3] moto_server exited; log:" >&2
                tail -n 30 "$DIR/moto.log" >&2 || true
                exit 1
            fi
            sleep 0.25
        done
        if ! answering; then
            echo "[s3] moto_server did not answer on $ENDPOINT; log:" >&2
            tail -n 30 "$DIR/moto.log" >&2 || true
            exit 1
        fi
    fi
    cat >"$ENV_FILE" <<ENV
export SG_TEST_S3_ENDPOINT=$ENDPOINT
export SG_TEST_S3_REGION=us-east-1
export SG_TEST_S3_ACCESS_KEY_ID=testing
export SG_TEST_S3_SECRET_ACCESS_KEY=testing
ENV
    log "ready; environment in $ENV_FILE:"
    sed 's/^/[s3]   /' "$ENV_FILE"
}

stop() {
    local pid=""
    if [ -s "$DIR/moto.pid" ]; then
        pid="$(cat "$DIR/moto.pid")"
    fi
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        log "stopping moto_server (pid $pid)"
        kill "$pid"
        local i
        for i in $(seq 1 40); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    else
        log "moto_server not running"
    fi
    rm -f "$DIR/moto.pid" "$ENV_FILE"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *)
        echo "usage: $0 start|stop" >&2
        exit 2
        ;;
esac
