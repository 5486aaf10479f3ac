#!/usr/bin/env bash
# Makes the root filesystem of an equivalent of gcr.io/distroless/cc-debian12:nonroot in DIR
# (created; must not exist), the way distroless itself is made: the data of a few Debian bookworm
# packages unpacked with `dpkg-deb -x`, no maintainer scripts, no package manager, no shell.
# The packages are those of distroless's static, base and cc layers: base-files, netbase,
# tzdata, ca-certificates (only its bundle), libc6, libssl3, libgcc-s1, libgomp1, libstdc++6.
# Downloading the .debs with a private apt state (APT_DIR) keeps the host's apt sources and
# lists out of it: only Debian bookworm, bookworm-updates and bookworm-security.
# Usage: rootfs.sh DIR APT_DIR [MIRROR]
set -euo pipefail
dir=$1
aptdir=$2
mirror=${3:-http://deb.debian.org/debian}
security=${SG_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
packages=(base-files netbase tzdata ca-certificates libc6 libssl3 libgcc-s1 libgomp1 libstdc++6)

mkdir -p "$aptdir"/{lists/partial,cache/archives/partial,debs,parts,prefs}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
cat > "$aptdir/sources.list" <<SOURCES
deb [signed-by=$keyring] $mirror bookworm main
deb [signed-by=$keyring] $mirror bookworm-updates main
deb [signed-by=$keyring] $security bookworm-security main
SOURCES
: > "$aptdir/status"
apt=(apt-get -q -o Dir::Etc::SourceList="$aptdir/sources.list" -o Dir::Etc::SourceParts="$aptdir/parts"
  -o Dir::Etc::Preferences="$aptdir/prefs/none" -o Dir::Etc::PreferencesParts="$aptdir/prefs"
  -o Dir::State::Lists="$aptdir/lists" -o Dir::State::Status="$aptdir/status"
  -o Dir::Cache="$aptdir/cache" -o APT::Architecture=amd64 -o APT::Architectures::=amd64
  -o Acquire::Languages=none -o APT::Sandbox::User=root)
"${apt[@]}" update
rm -f "$aptdir"/debs/*.deb
(cd "$aptdir/debs" && "${apt[@]}" download "${packages[@]}")

mkdir -p "$dir/var/lib/dpkg/status.d"
certs=$(mktemp -d)
trap 'rm -rf "$certs"' EXIT
for deb in "$aptdir"/debs/*.deb; do
  pkg=$(dpkg-deb -f "$deb" Package)
  if [[ $pkg == ca-certificates ]]; then
    # Only the bundle update-ca-certificates would make (every Mozilla certificate, in order)
    # and the copyright; the package's scripts need a shell and Perl.
    dpkg-deb -x "$deb" "$certs"
    mkdir -p "$dir/etc/ssl/certs" "$dir/usr/share/doc/ca-certificates"
    find "$certs/usr/share/ca-certificates" -name '*.crt' -print0 | LC_ALL=C sort -z \
      | xargs -0 cat > "$dir/etc/ssl/certs/ca-certificates.crt"
    cp "$certs/usr/share/doc/ca-certificates/copyright" "$dir/usr/share/doc/ca-certificates/"
  else
    dpkg-deb -x "$deb" "$dir"
  fi
  # What scanners read in distroless images: one control file per package.
  dpkg-deb -f "$deb" > "$dir/var/lib/dpkg/status.d/$pkg"
done
grep -q 'BEGIN CERTIFICATE' "$dir/etc/ssl/certs/ca-certificates.crt"

# Users and groups of distroless: root, nobody and nonroot (65532, home /home/nonroot).
cat > "$dir/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PASSWD
cat > "$dir/etc/group" <<'GROUP'
root:x:0:
tty:x:5:
staff:x:50:
nobody:x:65534:
nonroot:x:65532:
GROUP
echo 'hosts: files dns' > "$dir/etc/nsswitch.conf"
install -d -m 0700 "$dir/root"
install -d -m 0700 -o 65532 -g 65532 "$dir/home/nonroot"
install -d -m 1777 "$dir/tmp"
# The dynamic loader's cache of the unpacked libraries (ldconfig is not in the image).
ldconfig -r "$dir"

# No documentation but the copyright files, no manual pages or translations; no programs that
# need a shell (the image has none).
find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$dir"/usr/share/{man,info,lintian,locale,gcc,gdb} "$dir/usr/share/base-files/dot."*
[[ ! -e $dir/bin/sh && ! -e $dir/usr/bin/sh ]]
