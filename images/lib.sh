# Shared by images/build.sh and images/from-source.sh (sourced): the cache layout, podman and
# buildah storage in the cache, logging, and the build-once helpers.
# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables are for the scripts that source this file
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${SG_CACHE:-$HOME/.cache/securityguard}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
out="$cache/images"             # the archives and their input keys
work="$cache/images-work"       # root filesystems, build contexts, logs
store="$cache/containers"       # podman and buildah storage (layers, build cache)
mirror=${SG_DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$out" "$work/logs" "$store"

log() { printf '[images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
# run NAME CMD...: runs CMD with its output in $work/logs/NAME.log, printed when CMD fails.
run() {
  local name=$1; shift
  local f="$work/logs/$name.log"
  if ! "$@" >"$f" 2>&1; then
    log "FAILED ($name): $*"
    tail -n 80 "$f" >&2
    log "full output: $f"
    exit 1
  fi
}

# podman and buildah keep their storage (layers, images, buildah's layer cache) in the cache too.
cat > "$store/storage.conf.tmp" <<CONF
[storage]
driver = "overlay"
graphroot = "$store/storage"
runroot = "$store/run"
CONF
mv "$store/storage.conf.tmp" "$store/storage.conf"
export CONTAINERS_STORAGE_CONF="$store/storage.conf"
# Short names in FROM lines (debian:bookworm-slim, rust:1.95-bookworm) mean Docker Hub's, as for
# Docker, whatever the host's registries.conf says; nothing is pulled (--pull=never).
cat > "$store/registries.conf.tmp" <<'CONF'
unqualified-search-registries = ["docker.io"]
short-name-mode = "permissive"
CONF
mv "$store/registries.conf.tmp" "$store/registries.conf"
export CONTAINERS_REGISTRIES_CONF="$store/registries.conf"
# RUN steps run in a chroot: runc's default isolation needs rlimits this machine refuses
# ("setrlimit RLIMIT_NOFILE: Operation not permitted").
export BUILDAH_ISOLATION=chroot

# key FILE|DIR|STRING...: a digest of the inputs (file contents with their names, strings as is).
key() {
  local a
  for a in "$@"; do
    if [[ -d $a ]]; then
      (cd "$a" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    elif [[ -f $a ]]; then
      printf '%s ' "$(basename "$a")"; sha256sum <"$a"
    else
      printf '%s\n' "$a"
    fi
  done | sha256sum | cut -c1-32
}

# cached NAME REF KEY: true when NAME's archive was built from KEY's inputs; loads the archive
# into the storage when the storage lost the image (FROM lines of later images need it).
cached() {
  local name=$1 ref=$2 k=$3
  [[ ${SG_IMAGES_REBUILD:-} != 1 && -f $out/$name.tar && -f $out/$name.key ]] || return 1
  [[ $(cat "$out/$name.key") == "$k" ]] || return 1
  if ! podman image exists "$ref"; then
    log "$name: loading $out/$name.tar into the build storage"
    run "load-$name" timeout 600 podman load -i "$out/$name.tar"
  fi
  log "$name: up to date ($ref)"
}

# save NAME REF KEY T0: exports REF as NAME's archive and records its key.
save() {
  local name=$1 ref=$2 k=$3 t0=$4
  rm -f "$out/$name.tar.tmp"
  run "save-$name" timeout 600 podman save --format docker-archive -o "$out/$name.tar.tmp" "$ref"
  mv "$out/$name.tar.tmp" "$out/$name.tar"
  echo "$k" >"$out/$name.key"
  log "$name: built $ref in $((SECONDS - t0))s ($(du -h "$out/$name.tar" | cut -f1))"
}

# bud NAME REF CONTEXT DOCKERFILE [ARGS...]: buildah build with the images in the storage only,
# for at most SG_IMAGES_BUILD_TIMEOUT seconds (default an hour).
bud() {
  local name=$1 ref=$2 ctx=$3 file=$4; shift 4
  run "build-$name" timeout "${SG_IMAGES_BUILD_TIMEOUT:-3600}" buildah bud --pull=never --layers --force-rm -f "$file" -t "$ref" "$@" "$ctx"
}


# remove_tree DIR: removes a root filesystem under construction, unmounting first what an
# interrupted debootstrap may have left mounted in it (/proc, /sys), never crossing a mount.
remove_tree() {
  local dir=$1
  [[ -e $dir ]] || return 0
  awk -v d="$dir/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r | xargs -r -n1 umount -l
  rm -rf --one-file-system "$dir"
}

# lock: one build at a time per cache (the node bring-up and a user may both build).
lock() {
  exec 9>"$out/.lock"
  if ! flock -w 1800 9; then log "another build holds $out/.lock for more than 30 minutes"; exit 1; fi
}
