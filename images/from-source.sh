#!/usr/bin/env bash
# Proves that our Dockerfiles still build from source (BINARIES=source, a rust:1.95-bookworm
# stage compiling the workspace) with buildah, no registry involved: builds the images of
# images/build.sh, then a rust:1.95-bookworm made from debian:bookworm-slim + build-essential +
# this machine's Rust toolchain (images/rust/), then operator/Dockerfile and api-server/Dockerfile
# from the repository root, tagged localhost/securityguard/{operator,api}:from-source, runs each
# binary's --help in its image, and removes those images again (only the rust base stays in the
# build storage). Slow (a full release build inside the image); not part of the tests.
# Usage: images/from-source.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/build.sh" >/dev/null
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$here/lib.sh"
start=$SECONDS
# buildah's scratch space and the cache mounts of RUN --mount=type=cache (the API's cargo
# registry and target) in the cache too, not in /var/tmp.
mkdir -p "$work/tmp"
export TMPDIR="$work/tmp"
# A cold release build of the workspace inside the image: allow three hours per build.
export SG_IMAGES_BUILD_TIMEOUT=${SG_IMAGES_BUILD_TIMEOUT:-10800}
# No lock held: this takes long, and it writes no archive build.sh or load.sh read.

# --- rust:1.95-bookworm from the host's toolchain ----------------------------------------------
rust_version=1.95.0
triple=x86_64-unknown-linux-gnu
rust_ref=docker.io/library/rust:1.95-bookworm
toolchain=$(rustup run "$rust_version" rustc --print sysroot 2>/dev/null) \
  || { log "the Rust $rust_version toolchain is not installed (rustup toolchain install $rust_version)"; exit 1; }
toolchain=$(readlink -f "$toolchain")
# The toolchain by its versions (hashing its 1.4 GB would take longer than the check is worth).
rust_key=$(key "$here/rust" "$(cat "$out/debian-slim.key")" "toolchain $toolchain" \
  "$("$toolchain/bin/rustc" -vV)" "$("$toolchain/bin/cargo" -V)" "$(rustup --version 2>/dev/null)" \
  /etc/ssl/certs/ca-certificates.crt)
if ! cached rust "$rust_ref" "$rust_key"; then
  t0=$SECONDS ctx="$work/context/rust"
  rm -rf "$ctx"; mkdir -p "$ctx/rustup/toolchains" "$ctx/cargo-bin"
  log "rust: staging the $rust_version toolchain ($toolchain, without its documentation)"
  # Hard links when the toolchain shares the cache's file system, copies otherwise.
  cp -al "$toolchain" "$ctx/rustup/toolchains/$rust_version-$triple" 2>/dev/null \
    || cp -a "$toolchain" "$ctx/rustup/toolchains/$rust_version-$triple"
  rm -rf "$ctx/rustup/toolchains/$rust_version-$triple/share/doc"
  printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\nauto_self_update = "disable"\n' \
    "$rust_version-$triple" >"$ctx/rustup/settings.toml"
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
  cp "$(readlink -f "$(command -v rustup)")" "$ctx/cargo-bin/rustup"
  for proxy in cargo rustc rustdoc rust-gdb rust-lldb rustfmt cargo-fmt cargo-clippy clippy-driver; do
    ln -s rustup "$ctx/cargo-bin/$proxy"
  done
  log "rust: building images/rust/Dockerfile"
  bud rust "$rust_ref" "$ctx" "$here/rust/Dockerfile"
  rm -rf "$ctx"
  # Only the storage keeps it (no archive: the cluster never runs it); the key marks it built.
  echo "$rust_key" >"$out/rust.key"
  log "rust: built $rust_ref in $((SECONDS - t0))s"
fi

# --- our Dockerfiles, from source ------------------------------------------------------------------
for spec in operator:operator/Dockerfile:securityguard-operator api:api-server/Dockerfile:securityguard-api; do
  IFS=: read -r name file bin <<<"$spec"
  ref=localhost/securityguard/$name:from-source
  t0=$SECONDS
  log "$name: buildah bud --build-arg BINARIES=source -f $file (compiles the workspace in the image)"
  # buildah 1.28 skips stages by --build-arg values only, not by the ARG's default: name it.
  bud "$name-from-source" "$ref" "$repo" "$repo/$file" --build-arg BINARIES=source
  log "$name: built $ref in $((SECONDS - t0))s"
  c=$(buildah from --pull=never "$ref")
  if ! buildah run "$c" -- "/usr/local/bin/$bin" --help >"$work/logs/$name-from-source-run.log" 2>&1; then
    buildah rm "$c" >/dev/null; log "FAILED: $bin --help in $ref"; cat "$work/logs/$name-from-source-run.log" >&2; exit 1
  fi
  buildah rm "$c" >/dev/null
  log "$name: $bin --help runs in $ref"
  # The proof is made: free the space (the compiled workspace sits in the source stage's layers).
  run "rmi-$name-from-source" buildah rmi "$ref"
done
# Untagged images go one generation per prune (a parent is dangling once its child is gone).
for _ in $(seq 20); do
  run prune-from-source podman image prune -f
  [[ -s $work/logs/prune-from-source.log ]] || break
done
log "from-source builds done in $((SECONDS - start))s"
