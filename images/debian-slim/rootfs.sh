#!/usr/bin/env bash
# Makes the root filesystem of docker.io/library/debian:bookworm-slim in DIR (created; must not
# exist): `debootstrap --variant=minbase` (Essential packages and apt), the security and
# point-release updates applied, then slimmed like the official image (debuerreotype's
# `slimify`): no apt lists or caches, no documentation except copyright files, no manual pages,
# no translations; dpkg keeps excluding those from packages installed later.
# Usage: rootfs.sh DIR [MIRROR]
set -euo pipefail
dir=$1
mirror=${2:-http://deb.debian.org/debian}
security=${SG_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

debootstrap --variant=minbase --arch=amd64 bookworm "$dir" "$mirror"

# The suites of the official image (deb822 format), instead of debootstrap's one-line file.
rm -f "$dir/etc/apt/sources.list"
cat > "$dir/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES

# The official image's dpkg and apt settings (debuerreotype): later `apt-get install`s in
# derived images stay slim and leave no package caches behind.
cat > "$dir/etc/dpkg/dpkg.cfg.d/docker" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
DPKG
cat > "$dir/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
echo 'Acquire::Languages "none";' > "$dir/etc/apt/apt.conf.d/docker-no-languages"
echo 'Acquire::GzipIndexes "true";' > "$dir/etc/apt/apt.conf.d/docker-gzip-indexes"
echo 'Apt::AutoRemove::SuggestsImportant "false";' > "$dir/etc/apt/apt.conf.d/docker-autoremove-suggests"

# Security and point-release updates (debootstrap installs bookworm as released). The chroot
# needs no mounts: apt and dpkg run without /proc for these packages.
cp /etc/resolv.conf "$dir/etc/resolv.conf"
chroot "$dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
  sh -c 'apt-get update -qq && apt-get -y -qq -o Dpkg::Options::=--force-confold upgrade'
chroot "$dir" apt-get clean

# Slim: what the dpkg excludes above would have left out, and the build's leftovers.
find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$dir"/usr/share/{man,groff,info,lintian,linda}/*
find "$dir/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
  "$dir"/var/cache/debconf/*-old "$dir"/var/lib/dpkg/*-old "$dir"/var/log/apt/* \
  "$dir"/var/log/bootstrap.log "$dir"/debootstrap
find "$dir/var/log" -type f -exec truncate -s 0 {} +
# The container runtime provides these; device nodes come from the runtime too.
: > "$dir/etc/resolv.conf"
: > "$dir/etc/hostname"
if [[ -e $dir/etc/machine-id ]]; then : > "$dir/etc/machine-id"; fi
find "$dir/dev" -mindepth 1 -delete
find "$dir/tmp" "$dir/var/tmp" -mindepth 1 -delete
