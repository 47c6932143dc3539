#!/usr/bin/env bash
# Installs what ethos needs from Debian's archive, only what is missing, then configures and
# builds. Used by both README commands and by CI. Idempotent: a second run installs nothing.
#   launch/install.sh [build-dir]      (default: build)
#   launch/install.sh --packages-only [EXTRA ...]   (the packages and EXTRA ones, no build: for
#                                                    tests/sanitize.sh and tests/fuzz/run.sh)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
extra=()
[ "$build" = "--packages-only" ] && extra=("${@:2}")

packages=(
  build-essential cmake pkg-config
  libtorch-dev libgloo-dev libopenblas0-openmp   # tensors + c10d headers + fast BLAS (README.md, stack notes 1 and 9)
  libsentencepiece-dev sentencepiece
  libyaml-cpp-dev nlohmann-json3-dev libcli11-dev catch2
  libxxhash-dev                                  # checksums of checkpoint files and cache entries
  zlib1g-dev                                     # reading a published study's eval.jsonl.gz
  libpcre2-dev libicu-dev                        # tokenizer.json: pre-tokenizer regexes, Unicode normalisers
  gnuplot-nox
  python3-torch                                  # reference numbers only (parity goldens, benchmarks)
  slurmctld slurmd slurm-client munge            # the launch tests' own single-node Slurm (tests/slurm/cluster.sh)
)
install_missing() {  # apt-get install those of "$@" that are not installed; a failure stops the script
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then echo "[install] all Debian packages present"; return; fi
  echo "[install] installing: ${missing[*]}"
  local SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
}
install_missing "${packages[@]}" "${extra[@]}"
# sentencepiece 0.2 (trixie and later) includes Abseil from its public header without depending
# on libabsl-dev: add it where the installed header needs it.
if grep -qsE '#include [<"]absl/' /usr/include/sentencepiece_processor.h; then install_missing libabsl-dev; fi

[ "$build" = "--packages-only" ] && exit 0
jobs="$(nproc)"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
echo "[install] building in $build with $jobs jobs"
cmake --build "$build" -j "$jobs"
