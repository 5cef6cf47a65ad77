#!/usr/bin/env bash
# ./dsk test-package [DEB]: installs the Debian package into a second, clean Debian 13 root
# (debootstrap minbase; nothing of the build root in it) with apt-get, which resolves its
# dependencies from the archive, and checks it as a user would, as an ordinary user "tester":
#   1. GIMP 3 in batch mode lists the three procedures;
#   2. the packaged batch script inpaints a test picture with the packaged default model;
#   3. diffsketch doctor reports no problem (exit 0);
#   4. apt-get remove --purge leaves no file of the package behind.
# Not part of ./dsk test (it downloads GIMP, LibTorch and their dependencies). Needs root.
# DEB defaults to the newest out/diffsketch_*_amd64.deb (./dsk package). DSK_KEEP_TEST_ROOT=1
# keeps the root for a look afterwards.
set -euo pipefail
DSK_REPO=${DSK_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
# shellcheck source=packaging/buildenv.sh
. "$DSK_REPO/packaging/buildenv.sh"

deb=${1:-$(ls -t "$DSK_REPO"/out/diffsketch_*_amd64.deb 2>/dev/null | head -1)}
[ -n "$deb" ] && [ -f "$deb" ] || dsk_die "no package: run ./dsk package first (or give the .deb's path)"
deb=$(realpath "$deb")
[ "$(id -u)" -eq 0 ] || dsk_die "test-package makes a Debian root with debootstrap and enters it with chroot: run it as root"
command -v debootstrap >/dev/null || {
  dsk_log "installing debootstrap on the host"
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap
} || dsk_die "debootstrap is missing and could not be installed"

root=$(mktemp -d /var/tmp/diffsketch-test-package.XXXXXX)
chmod 0755 "$root"  # mktemp makes it 0700: the user "tester" could not enter /
cleanup() { [ "${DSK_KEEP_TEST_ROOT:-0}" = 1 ] && dsk_log "root kept at $root" || rm -rf "$root"; }
trap cleanup EXIT
mirror=$(dsk_mirror)
dsk_log "creating a clean Debian 13 root in $root (debootstrap minbase)"
debootstrap --variant=minbase trixie "$root" "$mirror" >"$root.debootstrap.log" 2>&1 \
  || { tail -20 "$root.debootstrap.log" >&2; dsk_die "debootstrap failed; see $root.debootstrap.log"; }
rm -f "$root.debootstrap.log"
cp "$deb" "$root/tmp/"
cp "$DSK_REPO/packaging/test-package-checks.sh" "$root/tmp/"

# A private mount and PID namespace: everything started inside (GIMP, a warm engine) ends with it.
set +e
unshare --mount --pid --fork --propagation private -- /bin/bash -c '
  set -e
  root=$1; shift
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  mount --rbind /sys "$root/sys"
  cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
  exec chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    /bin/bash /tmp/test-package-checks.sh "$@"' test-package "$root" "/tmp/$(basename "$deb")"
status=$?
set -e
[ "$status" -eq 0 ] && dsk_log "test-package: all checks passed" || dsk_log "test-package: FAILED (exit $status)"
exit "$status"
