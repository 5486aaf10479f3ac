#!/usr/bin/env bash
# Runs the images images/build.sh made, without a Kubernetes node: each container is a runc
# bundle over the image's files (buildah from + mount), read-only root, no capabilities and the
# uid our pods use, its own network namespace. Proves: PostgreSQL initialises as uid 999 with
# PGDATA on a volume and accepts a password login over TCP (and refuses a wrong password), keeps
# its data on a restart, and also starts as root (fixing ownership, dropping to postgres); Redis
# runs the operator's command and answers the operator's probe, and its entrypoint starts as
# root; the operator image runs `securityguard-operator --help` and pg_dump/pg_restore; the API
# image runs `securityguard-api --help`. Leaves no container, mount or process behind.
set -euo pipefail
cache=${SG_CACHE:-$HOME/.cache/securityguard}
export CONTAINERS_STORAGE_CONF="$cache/containers/storage.conf"
export CONTAINERS_REGISTRIES_CONF="$cache/containers/registries.conf"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$(dirname "$0")/../Cargo.toml" | head -n1)
log() { printf '[images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
tmp=$(mktemp -d /tmp/sg-images-smoke.XXXXXX)
runc=(runc --root "$tmp/runc")
builders=()
containers=()
cleanup() {
  set +e
  for c in "${containers[@]}"; do "${runc[@]}" kill "$c" KILL >/dev/null 2>&1; "${runc[@]}" delete -f "$c" >/dev/null 2>&1; done
  for b in "${builders[@]}"; do buildah umount "$b" >/dev/null 2>&1; buildah rm "$b" >/dev/null 2>&1; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { log "FAILED: $*"; for f in "$tmp"/*.log; do [[ -s $f ]] && { echo "--- $f" >&2; tail -n 40 "$f" >&2; }; done; exit 1; }

# The capabilities Docker and containerd give a root container by default.
root_caps='["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FSETID","CAP_FOWNER","CAP_MKNOD","CAP_NET_RAW",
  "CAP_SETGID","CAP_SETUID","CAP_SETFCAP","CAP_SETPCAP","CAP_NET_BIND_SERVICE","CAP_SYS_CHROOT",
  "CAP_KILL","CAP_AUDIT_WRITE"]'

# bundle ID REF USER READONLY MOUNTS_JSON ENV_JSON ARGS_JSON [host]: a runc bundle in $tmp/ID
# running ARGS (the image's entrypoint and command when ARGS is null) as USER ("uid:gid"; root
# gets the default capabilities, anyone else none), with the image's environment plus ENV, and
# MOUNTS ([[destination, host directory or "tmpfs"], ...]); in the host's network namespace
# with "host".
bundle() {
  local id=$1 ref=$2 user=$3 ro=$4 mounts=$5 env=$6 args=$7 net=${8:-}
  local b; b=$(buildah from --pull=never "$ref")
  builders+=("$b")
  local rootfs; rootfs=$(buildah mount "$b")
  mkdir -p "$tmp/$id"
  podman image inspect "$ref" --format '{{json .Config}}' >"$tmp/$id/image.json"
  (cd "$tmp/$id" && runc spec)
  local caps='[]'; [[ ${user%%:*} == 0 ]] && caps=$root_caps
  jq --arg root "$rootfs" --argjson ro "$ro" --argjson uid "${user%%:*}" --argjson gid "${user##*:}" \
    --argjson mounts "$mounts" --argjson env "$env" --argjson args "$args" --argjson caps "$caps" \
    --arg net "$net" --slurpfile image "$tmp/$id/image.json" '
    ($image[0]) as $img
    | .root = {path: $root, readonly: $ro}
    | .process.terminal = false
    | .process.user = {uid: $uid, gid: $gid}
    | .process.cwd = (if ($img.WorkingDir // "") == "" then "/" else $img.WorkingDir end)
    | .process.env = (($img.Env // []) + $env)
    | .process.args = (if $args == null then (($img.Entrypoint // []) + ($img.Cmd // [])) else $args end)
    | .process.capabilities = {bounding: $caps, effective: $caps, permitted: $caps}
    | if $net == "host" then .linux.namespaces |= map(select(.type != "network")) else . end
    | .mounts += [$mounts[] | if .[1] == "tmpfs"
        then {destination: .[0], type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777"]}
        else {destination: .[0], type: "bind", source: .[1], options: ["rbind", "rw"]} end]
    ' "$tmp/$id/config.json" >"$tmp/$id/config.new"
  mv "$tmp/$id/config.new" "$tmp/$id/config.json"
}
# start ID: runs the bundle in the background (output in $tmp/ID.log).
start() { containers+=("$1"); "${runc[@]}" run -d --bundle "$tmp/$1" "$1" </dev/null >>"$tmp/$1.log" 2>&1 || fail "runc run $1"; }
# once ID: runs the bundle to completion, output in $tmp/ID.log.
once() { timeout 120 "${runc[@]}" run --bundle "$tmp/$1" "$1" </dev/null >"$tmp/$1.log" 2>&1 || fail "runc run $1"; }
# inside ID CMD...: runs CMD in the running container ID.
inside() { local id=$1; shift; "${runc[@]}" exec "$id" "$@"; }
# until_ok SECONDS CMD...: retries CMD every half second for SECONDS.
until_ok() {
  local n=$(($1 * 2)); shift
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  return 1
}
stop() { "${runc[@]}" kill "$1" "${2:-TERM}" 2>/dev/null || true
  until_ok 60 sh -c "! ${runc[*]} state $1 | grep -q '\"running\"'" || fail "$1 did not stop"
  "${runc[@]}" delete -f "$1" >/dev/null 2>&1; }

t0=$SECONDS
# --- PostgreSQL as the operator runs it: uid 999, read-only root, PGDATA under a volume -------
# The official image trusts connections from inside the container (initdb's loopback entries),
# passwords are for everyone else: the server shares the host's network namespace on a spare
# port and psql connects to the host's own address, not to 127.0.0.1.
# A port nothing listens on (other PostgreSQL servers may run on this machine).
port=
for _ in $(seq 50); do
  p=$((20000 + RANDOM % 30000))
  if [[ -z $(ss -Hltn "sport = :$p") ]]; then port=$p; break; fi
done
[[ -n $port ]] || fail "no free port"
addr=$(ip -4 -o route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')
[[ -n $addr ]] || addr=$(hostname -I | awk '{print $1}')
pg_env='["POSTGRES_USER=sg","POSTGRES_PASSWORD=s3cret","POSTGRES_DB=sgdb","PGDATA=/var/lib/postgresql/data/pgdata","PGPORT='$port'"]'
mkdir -p "$tmp/vol-pg"; chown 999:999 "$tmp/vol-pg"
pg_mounts='[["/var/lib/postgresql/data","'"$tmp/vol-pg"'"],["/var/run/postgresql","tmpfs"],["/tmp","tmpfs"]]'
bundle pg docker.io/library/postgres:15 999:999 true "$pg_mounts" "$pg_env" null host
start pg
until_ok 90 inside pg pg_isready -h "$addr" -U sg -d sgdb || fail "postgres (uid 999) not ready"
out=$(inside pg env PGPASSWORD=s3cret psql -h "$addr" -U sg -d sgdb -Atc 'select current_user, current_database(), inet_client_addr() is not null') \
  || fail "psql password login over TCP"
[[ $out == "sg|sgdb|t" ]] || fail "psql answered '$out'"
if inside pg env PGPASSWORD=wrong psql -h "$addr" -U sg -d sgdb -c 'select 1' >/dev/null 2>&1; then
  fail "a wrong password was accepted"
fi
inside pg env PGPASSWORD=s3cret psql -h "$addr" -U sg -d sgdb -qc 'create table kept(x int)' || fail "create table"
stop pg INT
grep -q 'PostgreSQL init process complete' "$tmp/pg.log" || fail "no initialisation in the log"
log "postgres: initialised as uid 999 on a read-only root, password login over TCP, wrong password refused"
# Second start on the same volume: no initialisation, the data is there.
start pg
until_ok 90 inside pg pg_isready -h "$addr" -U sg -d sgdb || fail "postgres restart not ready"
inside pg env PGPASSWORD=s3cret psql -h "$addr" -U sg -d sgdb -qc 'select * from kept' >/dev/null || fail "data lost on restart"
stop pg INT
grep -q 'Skipping initialization' "$tmp/pg.log" || fail "the restart initialised again"
log "postgres: restart keeps the database and skips initialisation"
# As root with the default PGDATA on a root-owned volume: the entrypoint fixes ownership and
# steps down to postgres.
mkdir -p "$tmp/vol-pgroot"
bundle pgroot docker.io/library/postgres:15 0:0 false '[["/var/lib/postgresql/data","'"$tmp/vol-pgroot"'"]]' \
  '["POSTGRES_PASSWORD=s3cret"]' null
start pgroot
until_ok 90 inside pgroot pg_isready -h 127.0.0.1 -U postgres || fail "postgres (root) not ready"
inside pgroot env PGPASSWORD=s3cret psql -h 127.0.0.1 -U postgres -Atc 'select 1' >/dev/null || fail "psql (root start)"
[[ $(stat -c %u "$tmp/vol-pgroot") == 999 ]] || fail "PGDATA not handed to uid 999"
[[ $(inside pgroot stat -c %u /proc/1) == 999 ]] || fail "postgres not running as postgres"
stop pgroot INT
log "postgres: started as root, PGDATA chowned to 999, server runs as postgres"
# Without a password the entrypoint refuses to initialise.
bundle pgnopw docker.io/library/postgres:15 999:999 true "$pg_mounts" '["PGDATA=/tmp/pgdata"]' null
if timeout 120 "${runc[@]}" run --bundle "$tmp/pgnopw" pgnopw </dev/null >"$tmp/pgnopw.log" 2>&1; then fail "started without POSTGRES_PASSWORD"; fi
grep -q 'POSTGRES_PASSWORD' "$tmp/pgnopw.log" || fail "no message about POSTGRES_PASSWORD"
log "postgres: refuses to initialise without POSTGRES_PASSWORD"

# --- Redis as the operator runs it ------------------------------------------------------------
mkdir -p "$tmp/vol-redis"; chown 999:999 "$tmp/vol-redis"
# shellcheck disable=SC2016 # expanded by the container's shell
redis_cmd='exec redis-server - --port 6379 --dir /data --appendonly yes --maxmemory 64mb --maxmemory-policy allkeys-lru <<EOF
requirepass $REDIS_PASSWORD
EOF
'
bundle redis docker.io/library/redis:7 999:999 true '[["/data","'"$tmp/vol-redis"'"],["/tmp","tmpfs"]]' \
  '["REDIS_PASSWORD=r3dis"]' "$(jq -cn --arg c "$redis_cmd" '["sh","-c",$c]')"
start redis
probe='REDISCLI_AUTH=r3dis redis-cli -p 6379 ping | grep -q PONG'
until_ok 30 inside redis sh -c "$probe" || fail "redis probe"
if inside redis sh -c 'REDISCLI_AUTH=wrong redis-cli -p 6379 ping 2>/dev/null | grep -q PONG'; then fail "redis accepted a wrong password"; fi
stop redis
log "redis: the operator's command as uid 999 on a read-only root, the probe answers PONG"
# The entrypoint as root: options only, it prepends redis-server, chowns /data, drops to redis.
mkdir -p "$tmp/vol-redisroot"
bundle redisroot docker.io/library/redis:7 0:0 false '[["/data","'"$tmp/vol-redisroot"'"]]' '[]' \
  '["docker-entrypoint.sh","--port","6380","--protected-mode","no"]'
start redisroot
until_ok 30 inside redisroot sh -c 'redis-cli -p 6380 ping | grep -q PONG' || fail "redis (root start) ping"
[[ $(stat -c %u "$tmp/vol-redisroot") == 999 ]] || fail "/data not handed to redis"
[[ $(inside redisroot stat -c %u /proc/1) == 999 ]] || fail "redis-server not running as redis"
stop redisroot
log "redis: the entrypoint as root prepends redis-server, chowns /data and runs it as redis"

# --- Our images ---------------------------------------------------------------------------------
bundle op "ghcr.io/securityguard/operator:$version" 65532:65532 true '[["/tmp","tmpfs"]]' '[]' \
  '["/usr/local/bin/securityguard-operator","--help"]'
once op; grep -qi usage "$tmp/op.log" || fail "operator --help"
# shellcheck disable=SC2016 # expanded by the container's shell
bundle opdump "ghcr.io/securityguard/operator:$version" 65532:65532 true '[]' '[]' \
  '["sh","-c","$SG_PG_BIN/pg_dump --version && $SG_PG_BIN/pg_restore --version"]'
once opdump; grep -q 'pg_dump (PostgreSQL) 15' "$tmp/opdump.log" || fail "pg_dump in the operator image"
log "operator: $(head -n1 "$tmp/opdump.log"); securityguard-operator --help runs as 65532"
bundle api "ghcr.io/securityguard/api:$version" 65532:65532 true '[]' '[]' \
  '["/usr/local/bin/securityguard-api","--help"]'
once api; grep -qi usage "$tmp/api.log" || fail "api --help"
log "api: securityguard-api --help runs as 65532 on the distroless base"
log "smoke tests passed in $((SECONDS - t0))s"
