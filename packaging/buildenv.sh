# shellcheck shell=bash
# The build environment behind ./dsk: Debian 13 packages, installed natively on Debian 13+ /
# Ubuntu 25.04+, or inside a Debian 13 root kept outside the repo on older hosts (Debian 12).
# Sourced by ./dsk; every function expects DSK_REPO to be set.

DSK_PACKAGES_FILE="$DSK_REPO/packaging/debian-packages.txt"
DSK_ROOT="${DSK_ROOT:-/var/cache/diffsketch/trixie-root}"

dsk_die() { echo "dsk: $*" >&2; exit 1; }
dsk_log() { echo "dsk: $*" >&2; }

dsk_package_list() { grep -v '^[[:space:]]*#' "$DSK_PACKAGES_FILE" | awk 'NF {print $1}'; }
dsk_package_hash() { dsk_package_list | sha256sum | cut -c1-16; }

# Native when the host itself ships the target packages (Debian >= 13, Ubuntu >= 25.04).
dsk_host_is_native() {
  [ "${DSK_FORCE_ROOT:-0}" = 1 ] && return 1
  [ -r /etc/os-release ] || return 1
  local id version
  id=$(. /etc/os-release; echo "${ID:-}")
  version=$(. /etc/os-release; echo "${VERSION_ID:-0}")
  case "$id" in
    debian) [ "${version%%.*}" -ge 13 ] 2>/dev/null ;;
    ubuntu) awk -v v="$version" 'BEGIN { exit !(v + 0 >= 25.04) }' ;;
    *) return 1 ;;
  esac
}

# The Debian mirror: DSK_DEBIAN_MIRROR, else the one the host's apt already uses.
dsk_mirror() {
  if [ -n "${DSK_DEBIAN_MIRROR:-}" ]; then echo "$DSK_DEBIAN_MIRROR"; return; fi
  local uri
  uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '$2 !~ /security/ {print $2; exit}')
  [ -n "$uri" ] || uri=$(grep -hs '^deb ' /etc/apt/sources.list | awk '$2 !~ /security/ {print $2; exit}')
  [ -n "$uri" ] || dsk_die "cannot find a Debian mirror in the host's apt sources; set DSK_DEBIAN_MIRROR"
  echo "$uri"
}

dsk_native_setup() {
  local missing=() p
  for p in $(dsk_package_list); do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  dsk_log "installing ${#missing[@]} Debian packages: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# Runs "$@" inside the root: private mount namespace, /proc /dev /sys and the repo bound at the
# same absolute path, then chroot. The caller's working directory is kept.
dsk_in_root() {
  local pass=() v
  for v in CI TERM DISPLAY OPENBLAS_CORETYPE OPENBLAS_L2_SIZE $(compgen -e | grep -E '^(DSK_|GIMP|OMP_|CTEST_|GTEST_|ATEN_CPU_CAPABILITY|ONEDNN_|DNNL_)' || true); do
    [ -n "${!v+x}" ] && pass+=("$v=${!v}")
  done
  unshare --mount --propagation private -- /bin/bash -c '
    set -e
    root=$1 repo=$2 cwd=$3; shift 3
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    mount --rbind /sys "$root/sys"
    mkdir -p "$root$repo"
    mount --bind "$repo" "$root$repo"
    [ -r /etc/resolv.conf ] && cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
    exec chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
      PATH="$repo/build/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
      CCACHE_DIR=/var/cache/ccache CCACHE_BASEDIR="$repo" \
      CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime "$@"' \
    dsk-root "$DSK_ROOT" "$DSK_REPO" "$PWD" \
    "${pass[@]}" /bin/bash -c 'cd "$0" 2>/dev/null || cd /; exec "$@"' "$PWD" "$@"
}

dsk_root_setup() {
  [ "$(id -u)" -eq 0 ] || dsk_die "this host is not Debian 13+: building needs a Debian 13 root made with debootstrap and entered with unshare + chroot, which needs root. Run ./dsk as root (or sudo ./dsk ...)."
  command -v unshare >/dev/null || dsk_die "unshare (util-linux) is missing"
  mkdir -p "$(dirname "$DSK_ROOT")"
  exec 9>"$DSK_ROOT.lock"
  flock 9
  if [ ! -f "$DSK_ROOT/.dsk-bootstrapped" ]; then
    command -v debootstrap >/dev/null || {
      dsk_log "installing debootstrap on the host"
      apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap
    } || dsk_die "debootstrap is missing and could not be installed"
    local mirror; mirror=$(dsk_mirror)
    dsk_log "creating the Debian 13 build root in $DSK_ROOT (about 20 s)"
    rm -rf "$DSK_ROOT.tmp"
    debootstrap --variant=minbase trixie "$DSK_ROOT.tmp" "$mirror" >"$DSK_ROOT.debootstrap.log" 2>&1 \
      || dsk_die "debootstrap failed; see $DSK_ROOT.debootstrap.log"
    rm -rf "$DSK_ROOT"
    mv "$DSK_ROOT.tmp" "$DSK_ROOT"
    touch "$DSK_ROOT/.dsk-bootstrapped"
  fi
  local want; want=$(dsk_package_hash)
  if [ "$(cat "$DSK_ROOT/.dsk-packages" 2>/dev/null)" != "$want" ]; then
    dsk_log "installing the Debian 13 packages into the build root (about a minute)"
    # shellcheck disable=SC2046
    DEBIAN_FRONTEND=noninteractive dsk_in_root /bin/bash -c \
      'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" && apt-get clean' \
      apt $(dsk_package_list) >"$DSK_ROOT.apt.log" 2>&1 \
      || { tail -20 "$DSK_ROOT.apt.log" >&2; dsk_die "package install failed; see $DSK_ROOT.apt.log"; }
    echo "$want" >"$DSK_ROOT/.dsk-packages"
  fi
  flock -u 9
}

# Sets up whichever environment this host needs; then dsk_exec runs commands in it.
dsk_setup() {
  if dsk_host_is_native; then
    DSK_MODE=native
    dsk_native_setup
  else
    DSK_MODE=root
    dsk_root_setup
  fi
}

dsk_exec() {
  if [ "$DSK_MODE" = native ]; then
    PATH="$DSK_REPO/build/bin:$PATH" CCACHE_BASEDIR="$DSK_REPO" \
      CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime "$@"
  else
    dsk_in_root "$@"
  fi
}
