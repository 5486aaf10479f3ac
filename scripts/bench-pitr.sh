#!/usr/bin/env bash
# Point-in-time recovery benchmark (BENCHMARKS.md, "Point-in-time recovery"), run by
# `just bench-pitr [SIZE_MB]`.
#
# On a private PostgreSQL 15 cluster (initdb'd here, run as the postgres user) and the moto S3
# server of scripts/services/s3.sh, in one run:
#   1. a database of at least SIZE_MB (default 1024): the tables of `pgbench -i -s 8` (the write
#      load's) and scan-like rows generated as scripts/bench-backup.sh does (what gzip meets in
#      production: hex digests, JSON, not pgbench's blank padding);
#   2. the `wal archive` sidecar (release build, 10 s passes, a base backup at start), and beside
#      it, for the baseline, `pg_basebackup -Ft -z` and `pg_receivewal` into local directories;
#   3. a steady write load (`pgbench -R 200 -T 120`, 4 clients) while the recovery point is
#      sampled every second: now minus `securityguard_wal_archived_through_timestamp_seconds`;
#   4. `restore --point-in-time T` (T = the middle of the load): download, verify, extract, replay
#      from S3, checks, swap — timed;
#   5. the same recovery by hand from the local copies: extract the tar, `restore_command = 'cp'`,
#      `recovery_target_time = T`, start, wait for the promotion — timed.
#
#   scripts/bench-pitr.sh [SIZE_MB]     (SG_OPERATOR_BIN: the binary, default the release build)
set -euo pipefail

SG_CACHE="${SG_CACHE:-$HOME/.cache/securityguard}"
SIZE_MB="${1:-1024}"
root=$(cd "$(dirname "$0")/.." && pwd)
operator="${SG_OPERATOR_BIN:-${CARGO_TARGET_DIR:-$SG_CACHE/target}/release/securityguard-operator}"
work="$SG_CACHE/bench-pitr"
pg="${SG_PG_BIN:-/usr/lib/postgresql/15/bin}"
log() { printf '[bench-pitr %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc -l | xargs printf '%.1f'; }
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

command -v bc >/dev/null || { log "bc is needed (Debian package bc)"; exit 1; }
[[ -x $operator ]] || { log "$operator not found: cargo build --release -p securityguard-operator"; exit 1; }

"$root/scripts/services/start.sh" >&2
"$root/scripts/services/s3.sh" start >&2
# shellcheck disable=SC1091
source "$SG_CACHE/services/s3.env"

port=55499
metrics=9299
data="$work/data"
bucket="sg-bench-pitr-$(date +%s)"
cleanup() {
  pkill -KILL -f -- "127.0.0.1:$metrics" 2>/dev/null || true
  pkill -KILL -f -- "pg_receivewal.*$port" 2>/dev/null || true
  for dir in "$data/pgdata" "$work/hand/pgdata"; do
    [ -f "$dir/postmaster.pid" ] && as_pg "$pg/pg_ctl" -D "$dir" -m immediate stop >/dev/null 2>&1 || true
  done
}
# The clusters and copies take a few GB: removed at the end unless SG_KEEP_BENCH=1.
trap 'cleanup; [ "${SG_KEEP_BENCH:-0}" = 1 ] || rm -rf "$work"' EXIT
cleanup
rm -rf "$work"
mkdir -p "$data" "$work/hand"
[ "$(id -u)" -eq 0 ] && chown -R postgres: "$work"
chmod o+x "$SG_CACHE" "$(dirname "$SG_CACHE")" 2>/dev/null || true

export AWS_ACCESS_KEY_ID="${SG_TEST_S3_ACCESS_KEY_ID:-testing}" AWS_SECRET_ACCESS_KEY="${SG_TEST_S3_SECRET_ACCESS_KEY:-testing}"
export SG_BACKUP_REGION="${SG_TEST_S3_REGION:-us-east-1}" PGUSER=postgres SG_PG_BIN="$pg" SG_LOG_TEXT=true
s3=(--bucket "$bucket" --prefix bench --guard bench/pitr --endpoint "$SG_TEST_S3_ENDPOINT" --path-style)
python3 - "$SG_TEST_S3_ENDPOINT" "$bucket" <<'PY'
import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(f"{sys.argv[1]}/{sys.argv[2]}", method="PUT")).read()
PY

start_pg() { as_pg "$pg/pg_ctl" -D "$1" -l "$work/$2.log" -w -t 600 start -o "-c port=$port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$work" >/dev/null; }
psql_() { "$pg/psql" -X -q -At -h 127.0.0.1 -p "$port" -U postgres "$@"; }

log "initdb, pgbench -i -s 8, then scan-like rows up to $SIZE_MB MiB"
as_pg "$pg/initdb" -D "$data/pgdata" -U postgres --auth=trust --no-locale >/dev/null
start_pg "$data/pgdata" live
as_pg "$pg/pgbench" -h 127.0.0.1 -p "$port" -U postgres -i -s 8 -q postgres 2>&1 | tail -1 >&2
psql_ -c "CREATE TABLE scans (id bigint PRIMARY KEY, wallet text NOT NULL, signature text NOT NULL,
  verdict text NOT NULL, risk_score int NOT NULL, details jsonb NOT NULL, created_at timestamptz NOT NULL)"
while (( $(psql_ -c "SELECT pg_database_size('postgres')") < SIZE_MB * 1024 * 1024 )); do
  psql_ -c "
    INSERT INTO scans
    SELECT n, md5(n::text) || substr(md5((n * 7)::text), 1, 12),
           md5((n * 3)::text) || md5((n * 5)::text) || substr(md5((n * 11)::text), 1, 24),
           (ARRAY['safe', 'suspicious', 'malicious'])[1 + n % 3], (n * 37) % 101,
           jsonb_build_object('program', md5((n % 5000)::text), 'instructions', n % 17,
                              'flags', jsonb_build_array(n % 2 = 0, n % 3 = 0), 'note', 'transfer to ' || md5((n * 13)::text)),
           timestamptz '2026-01-01' + n * interval '7 seconds'
    FROM generate_series(coalesce((SELECT max(id) FROM scans), 0) + 1, coalesce((SELECT max(id) FROM scans), 0) + 500000) n"
  log "  $(psql_ -c "SELECT pg_size_pretty(pg_database_size('postgres'))")"
done
psql_ -c "CHECKPOINT"
size=$(psql_ -c "SELECT pg_size_pretty(pg_database_size('postgres'))")
log "database: $size"

log "archiver (release) and, for the baseline, pg_receivewal and pg_basebackup into local directories"
as_pg env AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
  "$operator" wal archive "${s3[@]}" --pg-port "$port" --spool "$data/wal-spool" --interval 10s \
  --metrics-address "127.0.0.1:$metrics" 2>"$work/archiver.log" &
as_pg "$pg/pg_receivewal" -h 127.0.0.1 -p "$port" -U postgres --slot hand --create-slot --if-not-exists >/dev/null 2>&1
mkdir -p "$work/hand/wal"; [ "$(id -u)" -eq 0 ] && chown postgres: "$work/hand/wal"
as_pg "$pg/pg_receivewal" -h 127.0.0.1 -p "$port" -U postgres --slot hand -D "$work/hand/wal" --synchronous 2>/dev/null &
t=$(now)
as_pg "$pg/pg_basebackup" -h 127.0.0.1 -p "$port" -U postgres -D "$work/hand/base" -Ft -z -X none -c fast
hand_base=$(since "$t")
log "hand base backup: ${hand_base}s"
metric() { curl -s "127.0.0.1:$metrics/metrics" | awk -v m="$1" '$1 ~ "^"m {print $NF}' | sort -g | tail -1; }
until [ -n "$(metric securityguard_wal_last_base_backup_timestamp_seconds | grep -v '^0$' || true)" ]; do sleep 2; done
log "the archiver's base backup is stored"

log "steady write load: pgbench -R 200 -T 120 (4 clients), the recovery point sampled every second"
as_pg "$pg/pgbench" -h 127.0.0.1 -p "$port" -U postgres -c 4 -j 2 -R 200 -T 120 -n postgres >"$work/pgbench.out" 2>&1 &
load=$!
samples="$work/rpo.txt"; : >"$samples"
( while kill -0 "$load" 2>/dev/null; do
    through=$(metric securityguard_wal_archived_through_timestamp_seconds)
    echo "$(date +%s.%N) - $through" | bc -l >>"$samples"
    sleep 1
  done ) &
sampler=$!
sleep 60
target=$(psql_ -c "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")
target_pg="$(date -u -d "$target" '+%Y-%m-%d %H:%M:%S')+00"
wait "$load" "$sampler"
tps=$(awk '/^tps/ {print $3; exit}' "$work/pgbench.out")
read -r rpo_p50 rpo_p95 rpo_max < <(sort -g "$samples" | awk '{a[NR]=$1} END {printf "%.1f %.1f %.1f\n", a[int(NR*0.5)], a[int(NR*0.95)], a[NR]}')
log "RPO under load: p50 ${rpo_p50}s, p95 ${rpo_p95}s, max ${rpo_max}s ($tps tps)"
final=$(psql_ -c "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
until curl -s "127.0.0.1:$metrics/metrics" >/dev/null && [ "$(echo "$(metric securityguard_wal_archived_through_timestamp_seconds) > $(date -d "$final" +%s) + 12" | bc)" = 1 ]; do sleep 2; done
pkill -KILL -f -- "127.0.0.1:$metrics"; pkill -KILL -f -- "pg_receivewal.*$port" || true
as_pg "$pg/pg_ctl" -D "$data/pgdata" -m fast -w stop >/dev/null

log "restore --point-in-time $target (from S3)"
t=$(now)
as_pg env AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
  "$operator" restore --point-in-time "$target" "${s3[@]}" --request-id bench --data-dir "$data" \
  --termination-log "$work/restore.json" 2>"$work/restore.log"
ours=$(since "$t")
start_pg "$data/pgdata" restored
rows_restored=$(psql_ -c "SELECT count(*) FROM pgbench_history")
as_pg "$pg/pg_ctl" -D "$data/pgdata" -m fast -w stop >/dev/null
log "ours: ${ours}s; pgbench_history rows restored: $rows_restored"

log "by hand: extract the local base backup, restore_command cp, recovery_target_time, start, wait for the promotion"
t=$(now)
as_pg mkdir -m 700 "$work/hand/pgdata"
as_pg tar -xzf "$work/hand/base/base.tar.gz" -C "$work/hand/pgdata"
as_pg sh -c "cat >> '$work/hand/pgdata/postgresql.auto.conf'" <<CONF
restore_command = 'cp $work/hand/wal/%f %p || cp $work/hand/wal/%f.partial %p'
recovery_target_time = '$target_pg'
recovery_target_action = 'promote'
CONF
as_pg touch "$work/hand/pgdata/recovery.signal"
start_pg "$work/hand/pgdata" hand
until [ "$(psql_ -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]; do sleep 0.5; done
hand=$(since "$t")
rows_hand=$(psql_ -c "SELECT count(*) FROM pgbench_history")
log "by hand: ${hand}s; rows $rows_hand"
[ "$rows_hand" = "$rows_restored" ] || { log "the two recoveries differ: $rows_restored against $rows_hand"; exit 1; }

read -r download extract replay checks < <(python3 -c "import json,sys; s=json.load(open('$work/restore.json'))['recovery']['seconds']; print(*(round(s.get(k,0),1) for k in ('download','extract','replay','checks')))")
cat <<TABLE
| measure | value |
|---|---|
| database | $size (pgbench -s 8 and scan-like rows) |
| write load | $tps tps (pgbench -R 200, 4 clients, 120 s) |
| recovery point under load (now − archived-through), p50 / p95 / max | ${rpo_p50} s / ${rpo_p95} s / ${rpo_max} s |
| \`restore --point-in-time\` from S3 (download, verify, extract, replay, checks, swap) | ${ours} s (download $download, extract $extract, replay $replay, checks $checks) |
| by hand from local disk (extract, replay with \`cp\`, promote) | ${hand} s |
| rows of pgbench_history restored / by hand (the same target: must be equal) | $rows_restored / $rows_hand |
TABLE
