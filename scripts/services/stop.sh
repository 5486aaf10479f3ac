#!/usr/bin/env bash
# Stop the PostgreSQL and Redis servers started by start.sh. Data stays in place unless --purge.
set -euo pipefail

SG_CACHE="${SG_CACHE:-$HOME/.cache/securityguard}"
DIR="$SG_CACHE/services"
REDIS_PORT="${SG_REDIS_PORT:-56379}"
PG_BIN="${SG_PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_DATA="$DIR/postgres/data"

log() { echo "[services] $*"; }
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if [ -s "$PG_DATA/PG_VERSION" ] && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    log "stopping postgres"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null
else
    log "postgres not running"
fi

if command -v redis-cli >/dev/null 2>&1 && redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    log "stopping redis"
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
else
    log "redis not running"
fi

if [ "${1:-}" = "--purge" ]; then
    log "removing $DIR"
    rm -rf "$DIR"
fi
