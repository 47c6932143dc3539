#!/usr/bin/env bash
# Downloads, here, the Debian packages that building ethos needs besides LibTorch, for a GPU
# machine that has a CUDA PyTorch, a compiler and CMake but neither these libraries nor a network
# (a lent device). tests/gpu/run.sh unpacks them into a scratch prefix there when the system has
# no yaml-cpp of its own. Nothing is installed here either: `apt-get download` only.
#   tests/gpu/fetch_deps.sh [dir]       (default: tests/gpu/.deps, ignored by git; about 25 MB)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="${1:-$root/tests/gpu/.deps}"
packages=(
  libyaml-cpp-dev libyaml-cpp0.7          # recipes
  nlohmann-json3-dev libcli11-dev catch2  # header-only: JSON, the command line, the tests
  libxxhash-dev libxxhash0                # checksums
  libsentencepiece-dev libsentencepiece0 libprotobuf-lite32   # tokenizer.model
  libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3   # tokenizer.json pre-tokenizers
  libicu-dev libicu72                     # tokenizer.json normalisers
  zlib1g-dev                              # published eval logs (.gz)
  pkgconf libpkgconf3 pkgconf-bin         # pkg-config, which CMake uses to find pcre2
  libgloo-dev                             # Gloo headers, used only when the LibTorch lacks its own
)
mkdir -p "$dir"
rm -f "$dir"/*.deb
(cd "$dir" && apt-get download -q "${packages[@]}" > /dev/null)
echo "[gpu-deps] $(ls "$dir"/*.deb | wc -l) packages, $(du -sh "$dir" | cut -f1) in $dir"
