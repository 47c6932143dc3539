#!/usr/bin/env bash
# Compiles (no link) every torch-using ethos source against LibTorch 2.x headers, so the
# version-specific paths in trainer/compat.h (scaled_dot_product_attention, the 2.4+ autocast
# API, fused AdamW) are checked without a GPU. The headers come from Debian trixie's
# libtorch-dev .deb, unpacked into a scratch directory; nothing is installed.
#   tests/check_libtorch2.sh [scratch-dir]     (default: build/libtorch2)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${1:-$root/build/libtorch2}"
mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/root"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" > "$work/sources.list"
apt_opts=(-o Dir::Etc::sourcelist="$work/sources.list" -o Dir::Etc::sourceparts=- -o Dir::State::Lists="$work/lists")
if ! ls "$work"/libtorch-dev_*.deb >/dev/null 2>&1; then
  apt-get "${apt_opts[@]}" update -q >/dev/null
  (cd "$work" && apt-get "${apt_opts[@]}" download libtorch-dev 2>/dev/null)
fi
dpkg-deb -x "$work"/libtorch-dev_*.deb "$work/root"
inc="$work/root/usr/include"
grep -E "define TORCH_VERSION_(MAJOR|MINOR)" "$inc/torch/csrc/api/include/torch/version.h"
status=0
# Every C++ source of the torch floors and above (datasets/ has no torch), and the tests.
mapfile -t sources < <(cd "$root" && find trainer eval launch -name '*.cpp' | sort; ls tests/test_*.cpp tests/bench/*.cpp)
for rel in "${sources[@]}"; do
  f="$root/$rel"
  if g++ -std=c++17 -fsyntax-only -Wall -Wextra -Wno-unused-parameter -DCATCH_CONFIG_PREFIX_ALL \
       -DETHOS_SOURCE_DIR='""' -DETHOS_BINARY_DIR='""' -DETHOS_BIN='""' \
       -isystem "$inc" -isystem "$inc/torch/csrc/api/include" -I "$root" "$f" 2>"$work/err.txt"; then
    echo "ok    ${f#$root/}"
  else
    echo "FAIL  ${f#$root/}"; head -20 "$work/err.txt"; status=1
  fi
done
exit $status
