#!/usr/bin/env bash
# Start the PostgreSQL 15 and Redis 7 servers that the API tests need, as local processes on
# loopback, with their data under ${SG_CACHE:-$HOME/.cache/securityguard}/services (outside the
# clone). Installs the Debian packages when missing. Idempotent: a server already running is left
# alone. Writes the URLs to $SG_CACHE/services/env; use it with
#   source "${SG_CACHE:-$HOME/.cache/securityguard}/services/env"
set -euo pipefail

SG_CACHE="${SG_CACHE:-$HOME/.cache/securityguard}"
DIR="$SG_CACHE/services"
PG_PORT="${SG_PG_PORT:-55432}"
REDIS_PORT="${SG_REDIS_PORT:-56379}"
PG_BIN="${SG_PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_DATA="$DIR/postgres/data"
PG_LOG="$DIR/postgres/postgres.log"
REDIS_DIR="$DIR/redis"

log() { echo "[services] $*"; }

install_if_missing() {
    local missing=()
    [ -x "$PG_BIN/postgres" ] || missing+=(postgresql)
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${missing[*]} (Debian packages)"
        if [ "$(id -u)" -ne 0 ]; then
            echo "[services] need root to install ${missing[*]}" >&2
            exit 1
        fi
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # The packages' own services are not used; we run private instances below.
        apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# Run a command as the postgres user when we are root (initdb refuses to run as root).
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start_postgres() {
    mkdir -p "$DIR/postgres"
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
        chown postgres: "$DIR/postgres"
        # postgres must be able to reach its data dir through the parents.
        chmod o+x "$SG_CACHE" "$DIR" 2>/dev/null || true
        local p="$SG_CACHE"
        while [ "$p" != "/" ]; do chmod o+x "$p" 2>/dev/null || true; p="$(dirname "$p")"; done
    fi
    if [ ! -s "$PG_DATA/PG_VERSION" ]; then
        log "initdb $PG_DATA"
        as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust --encoding=UTF8 --no-locale >/dev/null
    fi
    # TLS with a self-signed certificate, so that clients are tested with sslmode=require as
    # managed PostgreSQL services demand it (plain connections keep working).
    if [ ! -s "$DIR/postgres/server.key" ]; then
        log "self-signed TLS certificate for postgres"
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=127.0.0.1" \
            -keyout "$DIR/postgres/server.key" -out "$DIR/postgres/server.crt" 2>/dev/null
        chmod 600 "$DIR/postgres/server.key"
        if [ "$(id -u)" -eq 0 ]; then chown postgres: "$DIR/postgres/server.key" "$DIR/postgres/server.crt"; fi
    fi
    if as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
        if [ "$("$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -Atc 'SHOW ssl' postgres 2>/dev/null)" = on ]; then
            log "postgres already running on 127.0.0.1:$PG_PORT"
            return 0
        fi
        log "restarting postgres with TLS"
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -w -t 60 stop -m fast >/dev/null
    fi
    log "starting postgres on 127.0.0.1:$PG_PORT"
    # Tests create one database per test and run in parallel.
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $DIR/postgres -c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c ssl=on -c ssl_cert_file=$DIR/postgres/server.crt -c ssl_key_file=$DIR/postgres/server.key" >/dev/null
    local i
    for i in $(seq 1 60); do
        if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then return 0; fi
        sleep 0.5
    done
    echo "[services] postgres did not become ready; log: $PG_LOG" >&2
    tail -n 30 "$PG_LOG" >&2 || true
    exit 1
}

start_redis() {
    mkdir -p "$REDIS_DIR"
    if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
        log "redis already running on 127.0.0.1:$REDIS_PORT"
        return 0
    fi
    log "starting redis on 127.0.0.1:$REDIS_PORT"
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$REDIS_DIR" --daemonize yes \
        --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" \
        --save "" --appendonly no --databases 16 >/dev/null
    local i
    for i in $(seq 1 60); do
        if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then return 0; fi
        sleep 0.25
    done
    echo "[services] redis did not become ready; log: $REDIS_DIR/redis.log" >&2
    tail -n 30 "$REDIS_DIR/redis.log" >&2 || true
    exit 1
}

install_if_missing
start_postgres
start_redis

cat >"$DIR/env" <<ENV
export SG_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$PG_PORT/postgres
export SG_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT
export SG_PG_BIN=$PG_BIN
ENV
log "ready; environment in $DIR/env:"
sed 's/^/[services]   /' "$DIR/env"
