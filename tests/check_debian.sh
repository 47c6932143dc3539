#!/usr/bin/env bash
# Builds ethos and runs its tests on a newer Debian release than the one CI runs on, inside a
# chroot, so that what breaks with newer LibTorch, GCC, Catch2 or sentencepiece is seen here
# first rather than on a user's machine or a lent GPU (whose PyTorch is newer than bookworm's).
#
#   tests/check_debian.sh [SUITE] [ctest args...]    SUITE: sid (default), trixie, forky...
#   ETHOS_DEBIAN_CACHE=DIR   where the chroots live (default: ~/.cache/ethos/debian; about 3 GB
#                            for sid, kept for the next run, which then rebuilds incrementally)
#
# Needs root (debootstrap, chroot, mounts) and Debian's archive. The chroot is made once with
# debootstrap (minbase), the working tree (tracked and untracked, not ignored files) is copied
# into it at each run, and launch/install.sh there installs the suite's packages and builds;
# then ctest runs with the given arguments (default: every test). Nothing outside the chroot
# is installed or changed besides debootstrap itself. In sid (2026-12) that is LibTorch 2.14
# (which needs C++20), GCC 16, CMake 4, Catch2 3 and sentencepiece 0.2 (Abseil).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
suite="${1:-sid}"
shift || true
cache="${ETHOS_DEBIAN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ethos/debian}"
chroot_dir="$cache/$suite"
step() { echo "[debian-$suite] $*"; }
[ "$(id -u)" -eq 0 ] || { echo "tests/check_debian.sh: needs root (debootstrap, chroot, mount)" >&2; exit 2; }

# ---- 1. the chroot, made once ----------------------------------------------------------------
if [ ! -f "$chroot_dir/.complete" ]; then
  command -v debootstrap >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap; }
  step "debootstrap into $chroot_dir"
  rm -rf "$chroot_dir"
  mkdir -p "$chroot_dir"
  debootstrap --variant=minbase "$suite" "$chroot_dir" http://deb.debian.org/debian >"$cache/debootstrap-$suite.log" 2>&1 ||
    { tail -20 "$cache/debootstrap-$suite.log"; exit 1; }
  # A mirror may serve a snapshot whose Release file is past its Valid-Until date; this chroot
  # only builds and tests ethos.
  echo 'Acquire::Check-Valid-Until "false";' > "$chroot_dir/etc/apt/apt.conf.d/99ethos-check"
  touch "$chroot_dir/.complete"
fi
# The host's name servers and certificate authorities (the tests' npm reference packages come
# over HTTPS, and a host behind a TLS-inspecting proxy trusts more than Debian's bundle).
cp /etc/resolv.conf "$chroot_dir/etc/resolv.conf"
mkdir -p "$chroot_dir/etc/ssl"
cp /etc/ssl/certs/ca-certificates.crt "$chroot_dir/etc/ssl/host-ca-certificates.crt" 2>/dev/null || true

# ---- 2. mounts, undone on exit ---------------------------------------------------------------
# /sys and /dev recursively (slurmd needs /sys/fs/cgroup, the tests /dev/shm and /dev/pts), made
# slaves so that undoing them cannot unmount anything of the host's.
mounted=()
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -R -l "${mounted[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
for m in proc sys dev; do
  mkdir -p "$chroot_dir/$m"
  mountpoint -q "$chroot_dir/$m" && continue
  if [ "$m" = proc ]; then
    mount -t proc proc "$chroot_dir/proc"
  else
    mount --rbind "/$m" "$chroot_dir/$m"
    mount --make-rslave "$chroot_dir/$m"
  fi
  mounted+=("$chroot_dir/$m")
done

# ---- 3. the working tree, copied in -----------------------------------------------------------
src="$chroot_dir/ethos"
mkdir -p "$src"
step "copying the working tree into $src"
(cd "$root" && git ls-files -co --exclude-standard -z | tar --null -cf - -T -) | tar -xf - -C "$src"

# ---- 4. install, build, test -------------------------------------------------------------------
ctest_args=("$@")
pass=(PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 NODE_EXTRA_CA_CERTS=/etc/ssl/host-ca-certificates.crt)
for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do [ -n "${!v:-}" ] && pass+=("$v=${!v}"); done
chroot "$chroot_dir" /usr/bin/env -i "${pass[@]}" \
  bash -c 'set -euo pipefail
    cd /ethos
    grep -h "^VERSION_ID\|^PRETTY_NAME" /etc/os-release || true
    launch/install.sh build
    echo "[versions] $(gcc --version | head -1); $(cmake --version | head -1);" \
      "LibTorch $(grep -ho "PACKAGE_VERSION \"[0-9.]*\"" /usr/lib/x86_64-linux-gnu/cmake/Torch/TorchConfigVersion.cmake | head -1)"
    cd build
    ctest --output-on-failure --timeout 900 -j 1 "$@"' bash "${ctest_args[@]}"
