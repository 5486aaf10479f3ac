#!/usr/bin/env bash
# Backup benchmark (BENCHMARKS.md, "Backups"), run by `just bench-backup [SIZE_MB]`.
#
# On the local PostgreSQL (scripts/services/start.sh) and a FRESH moto S3 server of its own (moto
# keeps objects in memory; its peak RSS is reported), in one run:
#   1. a database of at least SIZE_MB (default 1024) of scan-like rows, generated with
#      generate_series and kept between runs in $SG_CACHE (database sg_bench_backup);
#   2. `pg_dump -Fc > /dev/null`, the limit;
#   3. `securityguard-operator backup` into the bucket (release build, default options);
#   4. the shell pipeline `pg_dump -Fc | gzip | aws s3 cp - s3://...` (awscli from PyPI in
#      $SG_CACHE/venv-awscli);
#   5. `securityguard-operator restore` (download, SHA-256 check, pg_restore in one transaction,
#      row counts) into an empty database: the RTO;
#   6. plain `pg_restore` of the same dump file (already on disk) into an empty database.
# Wall times from the shell's clock; peak RSS from GNU time (per process of a pipeline; for a
# process with children, the largest of them) and the operator's own VmHWM from its log.
#
#   scripts/bench-backup.sh [SIZE_MB]     (SG_OPERATOR_BIN: the binary, default the release build)
set -euo pipefail

SG_CACHE="${SG_CACHE:-$HOME/.cache/securityguard}"
SIZE_MB="${1:-1024}"
root=$(cd "$(dirname "$0")/.." && pwd)
operator="${SG_OPERATOR_BIN:-${CARGO_TARGET_DIR:-$SG_CACHE/target}/release/securityguard-operator}"
work="$SG_CACHE/bench-backup"
mkdir -p "$work"
log() { printf '[bench-backup %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc -l | xargs printf '%.1f'; }
peak_kib() { awk '{print $1}' "$1"; }
mib() { echo "$1 / 1024" | bc -l | xargs printf '%.1f'; }
mb_per_s() { echo "$1 / 1000000 / $2" | bc -l | xargs printf '%.1f'; }

for tool in bc /usr/bin/time; do
  command -v "$tool" >/dev/null || { log "$tool is needed (Debian packages bc and time)"; exit 1; }
done
[[ -x $operator ]] || { log "$operator not found: cargo build --release -p securityguard-operator"; exit 1; }

"$root/scripts/services/start.sh" >&2
# shellcheck disable=SC1091
source "$SG_CACHE/services/env"
pg="${SG_PG_BIN:-/usr/lib/postgresql/15/bin}"
admin_url="$SG_TEST_DATABASE_URL"
server_url="${admin_url%/*}"
source_db=sg_bench_backup
source_url="$server_url/$source_db"
psql_admin() { "$pg/psql" -X -q -v ON_ERROR_STOP=1 "$admin_url" "$@"; }
psql_source() { "$pg/psql" -X -q -v ON_ERROR_STOP=1 "$source_url" "$@"; }

# --- 1. The database, cached between runs -------------------------------------------------------
db_bytes() { psql_admin -At -c "SELECT coalesce((SELECT pg_database_size('$source_db')), 0)"; }
if [[ $(psql_admin -At -c "SELECT count(*) FROM pg_database WHERE datname = '$source_db'") == 0 ]]; then
  psql_admin -c "CREATE DATABASE $source_db"
fi
psql_source -c "
  CREATE TABLE IF NOT EXISTS scans (
    id bigint PRIMARY KEY,
    wallet text NOT NULL,
    signature text NOT NULL,
    verdict text NOT NULL,
    risk_score int NOT NULL,
    details jsonb NOT NULL,
    created_at timestamptz NOT NULL
  )"
target=$((SIZE_MB * 1024 * 1024))
if (( $(db_bytes) < target )); then
  log "generating at least $SIZE_MB MiB of scans in $source_db (kept in the cache for the next runs)"
  clock=$(now)
  while (( $(db_bytes) < target )); do
    # One transaction per million rows: an interrupted run keeps what it committed.
    psql_source -c "
      INSERT INTO scans
      SELECT n,
             md5(n::text) || substr(md5((n * 7)::text), 1, 12),
             md5((n * 3)::text) || md5((n * 5)::text) || substr(md5((n * 11)::text), 1, 24),
             (ARRAY['safe', 'suspicious', 'malicious'])[1 + n % 3],
             (n * 37) % 101,
             jsonb_build_object('program', md5((n % 5000)::text), 'instructions', n % 17,
                                'flags', jsonb_build_array(n % 2 = 0, n % 3 = 0),
                                'note', 'transfer to ' || md5((n * 13)::text)),
             timestamptz '2026-01-01' + n * interval '7 seconds'
      FROM generate_series(coalesce((SELECT max(id) FROM scans), 0) + 1,
                           coalesce((SELECT max(id) FROM scans), 0) + 1000000) n"
    log "  $(mib $(( $(db_bytes) / 1024 ))) MiB ($(since "$clock") s)"
  done
  psql_source -c "VACUUM (FREEZE, ANALYZE) scans"
  log "generated in $(since "$clock") s"
else
  log "reusing $source_db from the cache"
fi
db_size=$(db_bytes)
rows=$(psql_source -At -c "SELECT count(*) FROM scans")
log "database: $(mib $((db_size / 1024))) MiB, $rows rows"

# --- A fresh S3 server of our own, and the AWS CLI ------------------------------------------------
if [[ ! -x $SG_CACHE/venv-awscli/bin/aws ]]; then
  log "installing awscli from PyPI into $SG_CACHE/venv-awscli"
  python3 -m venv "$SG_CACHE/venv-awscli"
  "$SG_CACHE/venv-awscli/bin/pip" install --disable-pip-version-check --progress-bar off -q awscli
fi
"$root/scripts/services/s3.sh" start >/dev/null # installs moto if needed; the shared server is left alone
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
endpoint="http://127.0.0.1:$port"
setsid "$SG_CACHE/venv-moto/bin/moto_server" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 </dev/null &
moto=$!
cleanup() {
  kill "$moto" 2>/dev/null || true
  for db in sg_bench_restore sg_bench_restore_plain; do
    psql_admin -c "DROP DATABASE IF EXISTS $db" 2>/dev/null || true
  done
}
trap cleanup EXIT
for _ in $(seq 1 120); do curl -fsS -o /dev/null "$endpoint/" 2>/dev/null && break; sleep 0.25; done
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_DEFAULT_REGION=us-east-1
aws() { "$SG_CACHE/venv-awscli/bin/aws" --endpoint-url "$endpoint" "$@"; }
aws s3 mb s3://bench >/dev/null
moto_kib() { awk -v f="$1" '$1 == f":" {print $2}' "/proc/$moto/status"; }
log "moto on $endpoint (pid $moto), $(mib "$(moto_kib VmRSS)") MiB"

# --- 2. pg_dump -Fc > /dev/null --------------------------------------------------------------------
log "pg_dump -Fc > /dev/null"
clock=$(now)
/usr/bin/time -f %M -o "$work/limit.rss" "$pg/pg_dump" -Fc -d "$source_url" >/dev/null
limit_s=$(since "$clock")
log "  $limit_s s"

# --- 3. securityguard-operator backup --------------------------------------------------------------
log "securityguard-operator backup"
clock=$(now)
/usr/bin/time -f %M -o "$work/operator.rss" env \
  DATABASE_URL="$source_url" SG_BACKUP_BUCKET=bench SG_BACKUP_ENDPOINT="$endpoint" SG_BACKUP_PATH_STYLE=true \
  SG_BACKUP_PREFIX=bench SG_GUARD=bench/bench SG_PG_BIN="$pg" SG_TERMINATION_LOG="$work/backup.json" \
  RUST_LOG=info "$operator" backup 2>"$work/backup.log" || { tail -5 "$work/backup.log" >&2; exit 1; }
operator_s=$(since "$clock")
operator_own=$(grep -o '"peak_rss_mib":[0-9.]*' "$work/backup.log" | tail -1 | cut -d: -f2)
dump_size=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["size"])' "$work/backup.json")
dump_key=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["key"])' "$work/backup.json")
log "  $operator_s s, dump $(mib $((dump_size / 1024))) MiB"

# --- 4. pg_dump -Fc | gzip | aws s3 cp - -----------------------------------------------------------
log "pg_dump -Fc | gzip | aws s3 cp - s3://bench/pipeline.pgdump.gz"
clock=$(now)
/usr/bin/time -f %M -o "$work/pipe-dump.rss" "$pg/pg_dump" -Fc -d "$source_url" \
  | /usr/bin/time -f %M -o "$work/pipe-gzip.rss" gzip \
  | /usr/bin/time -f %M -o "$work/pipe-aws.rss" "$SG_CACHE/venv-awscli/bin/aws" --endpoint-url "$endpoint" \
      s3 cp --only-show-errors - s3://bench/pipeline.pgdump.gz
pipe_s=$(since "$clock")
pipe_size=$(aws s3api head-object --bucket bench --key pipeline.pgdump.gz --query ContentLength --output text)
pipe_rss_sum=$(( $(peak_kib "$work/pipe-dump.rss") + $(peak_kib "$work/pipe-gzip.rss") + $(peak_kib "$work/pipe-aws.rss") ))
log "  $pipe_s s, object $(mib $((pipe_size / 1024))) MiB"
moto_peak=$(moto_kib VmHWM)

# --- 5. securityguard-operator restore (RTO) --------------------------------------------------------
psql_admin -c "DROP DATABASE IF EXISTS sg_bench_restore" -c "CREATE DATABASE sg_bench_restore"
log "securityguard-operator restore --source latest"
clock=$(now)
/usr/bin/time -f %M -o "$work/restore.rss" env \
  DATABASE_URL="$server_url/sg_bench_restore" SG_BACKUP_BUCKET=bench SG_BACKUP_ENDPOINT="$endpoint" \
  SG_BACKUP_PATH_STYLE=true SG_BACKUP_PREFIX=bench SG_GUARD=bench/bench SG_PG_BIN="$pg" \
  SG_RESTORE_WORK_DIR="$work" RUST_LOG=info "$operator" restore --source latest 2>"$work/restore.log" \
  || { tail -5 "$work/restore.log" >&2; exit 1; }
restore_s=$(since "$clock")
restore_own=$(grep -o '"peak_rss_mib":[0-9.]*' "$work/restore.log" | tail -1 | cut -d: -f2)
log "  $restore_s s"

# --- 6. plain pg_restore of the same dump file ------------------------------------------------------
aws s3 cp --only-show-errors "s3://bench/$dump_key" "$work/dump.pgdump"
psql_admin -c "DROP DATABASE IF EXISTS sg_bench_restore_plain" -c "CREATE DATABASE sg_bench_restore_plain"
log "pg_restore (the same dump, from a local file)"
clock=$(now)
/usr/bin/time -f %M -o "$work/plain.rss" "$pg/pg_restore" --no-owner -d "$server_url/sg_bench_restore_plain" "$work/dump.pgdump"
plain_s=$(since "$clock")
log "  $plain_s s"
restored=$("$pg/psql" -X -At "$server_url/sg_bench_restore_plain" -c "SELECT count(*) FROM scans")
[[ $restored == "$rows" ]] || { log "plain pg_restore has $restored rows, expected $rows"; exit 1; }
rm -f "$work/dump.pgdump"

# --- Results -----------------------------------------------------------------------------------------
db_mb=$(echo "$db_size / 1000000" | bc -l | xargs printf '%.0f')
{
  echo "### \`just bench-backup $SIZE_MB\` ($(date -u '+%Y-%m-%d %H:%M:%S UTC'))"
  echo
  echo "Database: $(mib $((db_size / 1024))) MiB ($rows rows, \`pg_database_size\`); custom-format dump $(mib $((dump_size / 1024))) MiB."
  echo "Throughput is database bytes per second of wall time."
  echo
  echo "| run | wall time | throughput | peak RSS |"
  echo "|---|---|---|---|"
  echo "| \`pg_dump -Fc > /dev/null\` (the limit) | $limit_s s | $(mb_per_s "$db_size" "$limit_s") MB/s | $(mib "$(peak_kib "$work/limit.rss")") MiB |"
  echo "| \`securityguard-operator backup\` to S3 | $operator_s s | $(mb_per_s "$db_size" "$operator_s") MB/s | operator $operator_own MiB; largest of it and its pg_dump $(mib "$(peak_kib "$work/operator.rss")") MiB |"
  echo "| \`pg_dump -Fc \\| gzip \\| aws s3 cp -\` | $pipe_s s | $(mb_per_s "$db_size" "$pipe_s") MB/s | $(mib "$pipe_rss_sum") MiB together: pg_dump $(mib "$(peak_kib "$work/pipe-dump.rss")"), gzip $(mib "$(peak_kib "$work/pipe-gzip.rss")"), aws $(mib "$(peak_kib "$work/pipe-aws.rss")") |"
  echo "| \`securityguard-operator restore\` (download, SHA-256, pg_restore in one transaction, row counts): RTO | $restore_s s | $(mb_per_s "$db_size" "$restore_s") MB/s | operator $restore_own MiB; largest of it and its pg_restore $(mib "$(peak_kib "$work/restore.rss")") MiB |"
  echo "| plain \`pg_restore\` of the same file | $plain_s s | $(mb_per_s "$db_size" "$plain_s") MB/s | $(mib "$(peak_kib "$work/plain.rss")") MiB |"
  echo
  echo "The pipeline's object: $(mib $((pipe_size / 1024))) MiB (gzip over the already compressed custom format). moto (objects in memory) peaked at $(mib "$moto_peak") MiB holding both objects. ${db_mb} MB database."
} | tee "$work/results.md"
