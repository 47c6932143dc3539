#!/usr/bin/env bash
# Compiles and links ethos's CUDA/NCCL build without a GPU, so the GPU path cannot rot unseen.
#
# Debian trixie ships a CUDA LibTorch (libtorch-cuda-dev 2.6, CUDA 12.4, NCCL 2.22). Its .debs
# are fetched through a scratch apt configuration (own sources list, lists and cache; the
# system's apt is not touched, nothing is installed) and unpacked with dpkg-deb into a cache
# directory that later runs reuse. ethos is then configured with -DETHOS_NCCL=ON against that
# tree, the `ethos` binary, the benchmarks and the GPU checks (tests/test_gpu.cpp) are built, and
# `nm -D` checks that the binary really references ProcessGroupNCCL, the fused AdamW kernel and
# scaled_dot_product_attention, and that test_gpu's NCCL check was compiled in.
#
# It is a compile-and-link check only: trixie's libraries need glibc 2.38 and a newer
# libstdc++ than bookworm's, so the link allows undefined symbols *inside* those shared
# libraries (-Wl,--allow-shlib-undefined; ethos's own undefined references still fail the
# link), and the result cannot run here.
#   tests/check_cuda_build.sh [build-dir]          (default: build-cuda)
#   ETHOS_CUDA_CACHE=DIR  where the .debs and the unpacked tree live
#                         (default: ~/.cache/ethos/cuda; 1.7 GB of .debs are fetched, 4.6 GB kept unpacked)
#   ETHOS_CUDA_JOBS=N     parallel compile jobs (default: the cores; each needs ~2.5 GB of memory)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build-cuda}"
cache="${ETHOS_CUDA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ethos/cuda}"
jobs="${ETHOS_CUDA_JOBS:-$(nproc)}"
tree="$cache/root"
packages=(
  libtorch-cuda-dev libtorch-cuda-2.6      # LibTorch 2.6 built with CUDA (headers, CMake config, libraries)
  libgloo-cuda-dev                         # trixie's gloo headers (bookworm's are older)
  libnccl-dev libnccl2                     # nccl.h for c10d's ProcessGroupNCCL
  nvidia-cuda-dev libcudart12 libcu++-dev  # CUDA 12.4 headers and libraries (cuda_fp16.h needs libcu++)
  libnvtoolsext1 nvidia-cuda-toolkit libnvvm4   # nvcc, which Torch's CMake config asks for
)
step() { echo "[cuda-build] $*"; }

# ---- 1. the packages, fetched once ----------------------------------------------------------
if [ ! -f "$tree/.complete" ]; then
  mkdir -p "$cache/lists/partial" "$cache/apt-cache/archives/partial" "$cache/debs"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main contrib non-free" \
    > "$cache/sources.list"
  apt_opts=(-o Dir::Etc::sourcelist="$cache/sources.list" -o Dir::Etc::sourceparts=- -o Dir::State::Lists="$cache/lists"
            -o Dir::Cache="$cache/apt-cache" -o Dir::State::status=/dev/null -o APT::Sandbox::User=root)
  step "fetching ${#packages[@]} trixie packages into $cache/debs"
  apt-get "${apt_opts[@]}" update -q >/dev/null
  (cd "$cache/debs" && apt-get "${apt_opts[@]}" download -q "${packages[@]}" >/dev/null)
  step "unpacking into $tree"
  rm -rf "$tree"
  mkdir -p "$tree"
  for deb in "$cache"/debs/*.deb; do dpkg-deb -x "$deb" "$tree"; done
  touch "$tree/.complete"
  rm -rf "$cache/debs" "$cache/apt-cache"  # the unpacked tree is what later runs reuse
fi
lib="$tree/usr/lib/x86_64-linux-gnu"
grep -E "define TORCH_VERSION_(MAJOR|MINOR)" "$tree/usr/include/torch/csrc/api/include/torch/version.h"

# ---- 2. nvcc that looks in the tree, not in /usr --------------------------------------------
# Debian's nvcc reads /etc/nvcc.profile, whose paths are /usr/...: give it a profile of its own,
# with the tree's ptxas and friends first (a CUDA 13 toolkit in /usr/local/cuda would not do).
nvcc_dir="$tree/usr/lib/nvidia-cuda-toolkit/bin"
rm -f "$nvcc_dir/nvcc.profile"
cat > "$nvcc_dir/nvcc.profile" <<EOF
NVVMIR_LIBRARY_DIR = $tree/usr/lib/cuda/nvvm/libdevice
PATH += $nvcc_dir:$tree/usr/bin:
INCLUDES += "-I$tree/usr/include"
LIBRARIES =+ \$(_SPACE_) "-L$lib/stubs" "-L$lib"
EOF
# The /usr/bin/nvcc wrapper (what CMake's FindCUDA runs) execs /usr/lib/...: point it at the tree.
rm -f "$tree/usr/bin/nvcc"
printf '#!/bin/sh\nexport PATH="%s:$PATH"\nexec "%s/nvcc" "$@"\n' "$nvcc_dir" "$nvcc_dir" > "$tree/usr/bin/nvcc"
chmod +x "$tree/usr/bin/nvcc"
"$tree/usr/bin/nvcc" --version | tail -1
# CMake takes the toolkit root from nvcc's own directory (.../nvidia-cuda-toolkit) and looks for
# include/cuda_runtime.h there; Debian scatters the headers into /usr/include.
ln -sfn ../../include "$tree/usr/lib/nvidia-cuda-toolkit/include"

# ---- 3. configure and build ------------------------------------------------------------------
# Debian's Torch config is not relocatable: without CMAKE_LIBRARY_PATH and Caffe2_DIR pointing
# into the tree, bookworm's libtorch 1.13 in /usr would be found and linked silently.
step "configuring $build against $tree"
mkdir -p "$build"
PATH="$nvcc_dir:$tree/usr/bin:$PATH" cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=ON \
  -DETHOS_NCCL=ON -DNCCL_INCLUDE_DIR="$tree/usr/include" \
  -DTorch_DIR="$lib/cmake/Torch" -DCaffe2_DIR="$lib/cmake/Caffe2" \
  -DCMAKE_PREFIX_PATH="$tree/usr" -DCMAKE_LIBRARY_PATH="$lib" -DCMAKE_INCLUDE_PATH="$tree/usr/include" \
  -DCUDAToolkit_ROOT="$tree/usr" -DCMAKE_CUDA_COMPILER="$nvcc_dir/nvcc" -DCMAKE_CUDA_ARCHITECTURES=80 -DCUDA_TOOLKIT_ROOT_DIR="$tree/usr" \
  -DCMAKE_EXE_LINKER_FLAGS="-Wl,--allow-shlib-undefined -Wl,-rpath-link,$lib" >"$build/configure.log" 2>&1 \
  || { tail -40 "$build/configure.log"; exit 1; }
step "building ethos, the benchmarks and test_gpu with $jobs job(s)"
cmake --build "$build" -j "$jobs" --target ethos bench_matmul bench_allreduce test_gpu

# ---- 4. the binary is the CUDA build ---------------------------------------------------------
bin="$build/ethos"
status=0
if ! readelf -d "$bin" | grep -q "libtorch_cuda.so"; then
  echo "FAIL  $bin does not link libtorch_cuda.so"; status=1
fi
if readelf -d "$bin" | grep -q "libtorch.so.1.13\|libtorch_cpu.so.1.13"; then
  echo "FAIL  $bin links bookworm's libtorch 1.13"; status=1
fi
symbols="$(nm -D -C "$bin")"
check() {  # check NAME PATTERN
  if grep -qE "$2" <<<"$symbols"; then echo "ok    $1"; else echo "FAIL  $1: no dynamic symbol matching /$2/"; status=1; fi
}
check "ProcessGroupNCCL (c10d NCCL backend)" "c10d::ProcessGroupNCCL::ProcessGroupNCCL"
check "fused AdamW kernel" "at::_ops::_fused_adamw_"
check "scaled_dot_product_attention" "at::_ops::scaled_dot_product_attention"
test_gpu_symbols="$(nm -C "$build/tests/test_gpu")"  # (not piped into grep -q: pipefail would see nm killed)
if grep -q "c10d::ProcessGroupNCCL::ProcessGroupNCCL" <<<"$test_gpu_symbols"; then
  echo "ok    test_gpu checks ProcessGroupNCCL"
else
  echo "FAIL  test_gpu was built without its NCCL check"; status=1
fi
exit $status
