#!/usr/bin/env bash
# Builds every container image the cluster needs, without a container registry: the Debian and
# distroless bases, the pod sandbox (pause), PostgreSQL and Redis for the managed datastores,
# and our operator and API images (from the binaries `cargo build` made outside the images).
# Each image is exported as a docker archive in $SG_CACHE/images/<name>.tar and rebuilt only
# when its inputs (recipe files, base image, binaries) changed; images/load.sh imports them.
# Progress goes to stderr; the last stdout line is the directory of the archives.
#
# Environment: SG_CACHE (default ~/.cache/securityguard), CARGO_TARGET_DIR (default
# $SG_CACHE/target), SG_IMAGE_PROFILE (cargo profile of our binaries: release (default) or debug),
# SG_IMAGES_REBUILD=1 rebuilds everything (e.g. to pick up Debian security updates).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
start=$SECONDS
profile=${SG_IMAGE_PROFILE:-release}
case $profile in
  release | debug) ;;
  *) log "SG_IMAGE_PROFILE must be release or debug, not '$profile'"; exit 2 ;;
esac
lock

# Host tools, from Debian's archive when missing.
need=()
for tool in podman:podman buildah:buildah debootstrap:debootstrap catatonit:catatonit \
  ctr:containerd flock:util-linux sha256sum:coreutils dpkg-deb:dpkg; do
  command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
if ((${#need[@]})); then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  run apt-install timeout 1800 sh -c "apt-get -o DPkg::Lock::Timeout=600 update -qq \
    && apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends ${need[*]}"
fi

names=()
refs=()
record() { names+=("$1"); refs+=("$2"); }

# --- docker.io/library/debian:bookworm-slim ------------------------------------------------
debian_ref=docker.io/library/debian:bookworm-slim
debian_key=$(key "$here/debian-slim" "$mirror")
record debian-slim "$debian_ref"
build_debian() {
  cached debian-slim "$debian_ref" "$debian_key" && return
  local t0=$SECONDS rootfs="$work/debian-slim-rootfs"
  log "debian-slim: debootstrap --variant=minbase bookworm (about 2 minutes)"
  remove_tree "$rootfs"
  run debian-slim-rootfs timeout 1800 "$here/debian-slim/rootfs.sh" "$rootfs" "$mirror"
  log "debian-slim: importing the root filesystem"
  run debian-slim-import timeout 600 sh -c "tar --numeric-owner -C '$rootfs' -cf - . | podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD [\"bash\"]' - '$debian_ref'"
  remove_tree "$rootfs"
  save debian-slim "$debian_ref" "$debian_key" "$t0"
}

# --- registry.k8s.io/pause:3.10 --------------------------------------------------------------
pause_ref=registry.k8s.io/pause:3.10
pause_key=$(key "$here/pause" "$(command -v catatonit)")
record pause "$pause_ref"
build_pause() {
  cached pause "$pause_ref" "$pause_key" && return
  local t0=$SECONDS ctx="$work/context/pause"
  rm -rf "$ctx"; mkdir -p "$ctx"
  cp "$(command -v catatonit)" "$ctx/catatonit"
  bud pause "$pause_ref" "$ctx" "$here/pause/Dockerfile"
  save pause "$pause_ref" "$pause_key" "$t0"
}

# --- gcr.io/distroless/cc-debian12:nonroot ----------------------------------------------------
distroless_ref=gcr.io/distroless/cc-debian12:nonroot
distroless_key=$(key "$here/distroless-cc" "$mirror")
record distroless-cc "$distroless_ref"
build_distroless() {
  cached distroless-cc "$distroless_ref" "$distroless_key" && return
  local t0=$SECONDS rootfs="$work/distroless-cc-rootfs"
  log "distroless-cc: unpacking Debian packages"
  remove_tree "$rootfs"
  run distroless-cc-rootfs timeout 900 "$here/distroless-cc/rootfs.sh" "$rootfs" "$work/apt" "$mirror"
  run distroless-cc-import timeout 600 sh -c "tar --numeric-owner -C '$rootfs' -cf - . | podman import \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'USER 65532' --change 'WORKDIR /home/nonroot' - '$distroless_ref'"
  remove_tree "$rootfs"
  save distroless-cc "$distroless_ref" "$distroless_key" "$t0"
}

# --- docker.io/library/postgres:15 and docker.io/library/redis:7 -------------------------------
postgres_ref=docker.io/library/postgres:15
postgres_key=$(key "$here/postgres" "$debian_key")
record postgres "$postgres_ref"
redis_ref=docker.io/library/redis:7
redis_key=$(key "$here/redis" "$debian_key")
record redis "$redis_ref"
# from_debian NAME REF KEY: an image of images/NAME/Dockerfile, FROM debian:bookworm-slim.
from_debian() {
  local name=$1 ref=$2 k=$3
  cached "$name" "$ref" "$k" && return
  local t0=$SECONDS
  log "$name: building images/$name/Dockerfile"
  bud "$name" "$ref" "$here/$name" "$here/$name/Dockerfile"
  save "$name" "$ref" "$k" "$t0"
}

# --- ghcr.io/securityguard/operator and ghcr.io/securityguard/api ------------------------------
# From our Dockerfiles with BINARIES=prebuilt: the binaries cargo builds here (a no-op when they
# are up to date), staged alone in a build context, so nothing compiles twice.
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$repo/Cargo.toml" | head -n1)
operator_ref=ghcr.io/securityguard/operator:$version
api_ref=ghcr.io/securityguard/api:$version
# One archive per cargo profile: switching SG_IMAGE_PROFILE back and forth rebuilds nothing.
record "operator-$profile" "$operator_ref"
record "api-$profile" "$api_ref"
build_ours() {
  local t0=$SECONDS flags=()
  [[ $profile == release ]] && flags=(--release)
  log "cargo build ${flags[*]} -p securityguard-operator -p securityguard-api"
  run cargo sh -c "cd '$repo' && cargo build ${flags[*]} --locked -p securityguard-operator -p securityguard-api"
  log "cargo: done in $((SECONDS - t0))s"
  # Staged at once, by hard link: the target directory may be shared with other checkouts whose
  # cargo replaces target/<profile>/<binary>; the link keeps the file this build made.
  local bins="$CARGO_TARGET_DIR/$profile" name bin
  for name in operator:securityguard-operator api:securityguard-api; do
    bin=${name#*:}; name=${name%%:*}
    rm -rf "$work/context/$name"; mkdir -p "$work/context/$name"
    ln "$bins/$bin" "$work/context/$name/$bin" 2>/dev/null || cp "$bins/$bin" "$work/context/$name/$bin"
  done
  ours "operator-$profile" "$operator_ref" securityguard-operator "$repo/operator/Dockerfile" "$debian_key" operator
  ours "api-$profile" "$api_ref" securityguard-api "$repo/api-server/Dockerfile" "$distroless_key" api
}
# ours NAME REF BINARY DOCKERFILE BASE_KEY CONTEXT: NAME's image from DOCKERFILE with the BINARY
# staged in $work/context/CONTEXT.
ours() {
  local name=$1 ref=$2 bin=$3 file=$4 base=$5 ctx="$work/context/$6"
  local k; k=$(key "$file" "$ctx/$bin" "$base")
  # The storage holds one image per reference, perhaps the other profile's: load the archive.
  if [[ -f $out/$name.tar && -f $out/$name.key && $(cat "$out/$name.key") == "$k" ]] \
    && [[ $(podman image inspect --format '{{index .Labels "securityguard.profile"}}' "$ref" 2>/dev/null) != "$profile" ]]; then
    run "load-$name" timeout 600 podman load -i "$out/$name.tar"
  fi
  if ! cached "$name" "$ref" "$k"; then
    local t0=$SECONDS
    log "$name: building ${file#"$repo"/} with the $profile binary"
    bud "$name" "$ref" "$ctx" "$file" --build-arg BINARIES=prebuilt --label "securityguard.profile=$profile"
    save "$name" "$ref" "$k" "$t0"
  fi
  rm -rf "$ctx"
}

build_pause
build_debian
build_distroless
from_debian postgres "$postgres_ref" "$postgres_key"
from_debian redis "$redis_ref" "$redis_key"
build_ours
# Images a rebuild replaced (untagged, nothing built on them); buildah's layer cache stays.
run prune timeout 600 podman image prune -f

log "all images in $out ($((SECONDS - start))s)"
# images.list: "<name> <reference>" per line, what load.sh imports and checks.
for i in "${!names[@]}"; do printf '%s %s\n' "${names[$i]}" "${refs[$i]}"; done >"$out/images.list.tmp"
mv "$out/images.list.tmp" "$out/images.list"
echo "$out"
