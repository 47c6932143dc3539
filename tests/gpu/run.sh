#!/usr/bin/env bash
# Every GPU check of ethos in one script, for a machine with an NVIDIA GPU and a CUDA PyTorch
# (`python3 -c 'import torch'`): a lent device, or your own GPU box.
#   1. builds `ethos`, `test_gpu` and the training tests into build-gpu/, against the LibTorch that
#      PyTorch ships (torch.utils.cmake_prefix_path), with NCCL (nccl.h from pip's nvidia-nccl,
#      /usr/include or the CUDA toolkit; or NCCL_INCLUDE_DIR);
#   2. runs test_gpu (tests/test_gpu.cpp): fp32 logits and gradients on the GPU against the CPU
#      (1e-4), a bf16 autocast step against fp32, SDPA against explicit attention on packed
#      documents, ProcessGroupNCCL and launched jobs, exact resume on the GPU;
#   3. runs the training tests (test_model, test_train, test_optim, test_dpo) with the GPU visible
#      (they train on the CPU; they check that this build, LibTorch 2.x, keeps their numbers);
#   4. runs tests/bench/bench_gpu.sh when it exists.
# Build dependencies come from the system. A machine without yaml-cpp and without a network (a
# lent device) uses the Debian packages that tests/gpu/fetch_deps.sh downloaded beforehand into
# tests/gpu/.deps (carry that folder), unpacked into a scratch prefix.
# Logs go to $OUT (the device tool's output folder) when it is set, else to <build>/logs. The exit
# status is the number of steps that failed.
#   tests/gpu/run.sh [build-dir]        (default: build-gpu)
#   ETHOS_GPU_JOBS=N                    compile jobs (default: the cores)
#   ETHOS_GPU_ONLY=configure|build|test stop after configuring or building, or skip the training tests and the benchmark
#   ETHOS_GPU_DEPS=carried              use tests/gpu/.deps even where the system has the libraries
#   ETHOS_TORCH_CMAKE=DIR               the LibTorch CMake prefix instead of python3's torch (…/share/cmake)
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-$root/build-gpu}"
logs="${OUT:-$build/logs}"
jobs="${ETHOS_GPU_JOBS:-$(nproc)}"
py="${PYTHON:-python3}"
mkdir -p "$build" "$logs"
failed=0
step() { echo "[gpu] $*"; }
fail() { echo "[gpu] FAIL: $*"; failed=$((failed + 1)); }

# ---- 0. the machine ---------------------------------------------------------------------------
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
  "$py" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, "GPUs", torch.cuda.device_count())'
  echo "cores $(nproc), $(cmake --version | head -1), $(c++ --version | head -1)"
} 2>&1 | tee "$logs/machine.txt"
torch_cmake="${ETHOS_TORCH_CMAKE:-$("$py" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')}" ||
  { echo "[gpu] python3 has no torch: set PYTHON to the one that has a CUDA PyTorch" >&2; exit 1; }
torch_root="$(dirname "$(dirname "$torch_cmake")")"  # .../site-packages/torch

# ---- 1. build dependencies --------------------------------------------------------------------
cmake_args=(-DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=ON -DTorch_DIR="$torch_cmake/Torch")
prefixes="$torch_cmake"
have_yaml_cpp=0
for d in /usr/lib/x86_64-linux-gnu/cmake/yaml-cpp /usr/lib/cmake/yaml-cpp /usr/share/cmake/yaml-cpp /usr/local/lib/cmake/yaml-cpp; do
  [ -d "$d" ] && have_yaml_cpp=1
done
[ "${ETHOS_GPU_DEPS:-}" = carried ] && have_yaml_cpp=0
if [ "$have_yaml_cpp" = 0 ]; then
  debs=("$root"/tests/gpu/.deps/*.deb)
  [ -f "${debs[0]}" ] || { echo "[gpu] no yaml-cpp here and no tests/gpu/.deps: run tests/gpu/fetch_deps.sh where apt works, and carry tests/gpu/.deps" >&2; exit 1; }
  pre=/tmp/ethos-deps
  step "unpacking ${#debs[@]} carried Debian packages into $pre"
  rm -rf "$pre" && mkdir -p "$pre"
  for d in "${debs[@]}"; do dpkg-deb -x "$d" "$pre"; done
  lib="$pre/usr/lib/x86_64-linux-gnu"
  export PATH="$pre/usr/bin:$PATH" LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export PKG_CONFIG_PATH="$lib/pkgconfig:$pre/usr/share/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$pre"  # the .pc files say /usr
  prefixes="$pre/usr;$prefixes"
  cmake_args+=(-DCMAKE_LIBRARY_PATH="$lib" -DCMAKE_INCLUDE_PATH="$pre/usr/include" -DICU_ROOT="$pre/usr")
  # Gloo's headers: the LibTorch's own when it ships them, else Debian's (after every -I).
  [ -d "$torch_root/include/gloo" ] || export CPATH="$pre/usr/include${CPATH:+:$CPATH}"
fi
cmake_args+=(-DCMAKE_PREFIX_PATH="$prefixes")

nccl_inc="${NCCL_INCLUDE_DIR:-}"
if [ -z "$nccl_inc" ]; then
  for d in "$("$py" -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "include"))' 2>/dev/null)" \
           /usr/include /usr/local/cuda/include; do
    [ -n "$d" ] && [ -f "$d/nccl.h" ] && { nccl_inc="$d"; break; }
  done
fi
if [ -n "$nccl_inc" ]; then
  cmake_args+=(-DETHOS_NCCL=ON -DNCCL_INCLUDE_DIR="$nccl_inc")
  step "NCCL headers: $nccl_inc"
else
  fail "no nccl.h found (pip's nvidia-nccl, /usr/include, /usr/local/cuda/include; or set NCCL_INCLUDE_DIR): building without NCCL"
fi

# ---- 2. build ----------------------------------------------------------------------------------
step "configuring $build"
if ! cmake -S "$root" -B "$build" "${cmake_args[@]}" > "$logs/configure.log" 2>&1; then
  tail -40 "$logs/configure.log"
  fail "configure (log: $logs/configure.log)"
  exit "$failed"
fi
grep -E "Found Torch|TORCH_VERSION|yaml-cpp|CUDA" "$logs/configure.log" | head -8
[ "${ETHOS_GPU_ONLY:-}" = configure ] && exit "$failed"
tests=(test_model test_train test_optim test_dpo)
step "building ethos, test_gpu and ${tests[*]} with $jobs job(s)"
if ! cmake --build "$build" -j "$jobs" --target ethos test_gpu "${tests[@]}" > "$logs/build.log" 2>&1; then
  grep -E "error|Error" "$logs/build.log" | head -30
  fail "build (log: $logs/build.log)"
  exit "$failed"
fi
[ "${ETHOS_GPU_ONLY:-}" = build ] && exit "$failed"

# ---- 3. the GPU checks, then the training tests ------------------------------------------------
cd "$build"
step "test_gpu"
if ! ./tests/test_gpu --durations yes 2>&1 | tee "$logs/test_gpu.log"; then fail "test_gpu (log: $logs/test_gpu.log)"; fi
grep -q "no CUDA device" "$logs/test_gpu.log" && fail "test_gpu found no CUDA device: nothing was checked"
if [ "${ETHOS_GPU_ONLY:-}" != test ]; then
  : > "$logs/tests.log"  # one log for all of them: the device tool returns at most 8 files
  for t in "${tests[@]}"; do
    step "$t"
    echo "==== $t" >> "$logs/tests.log"
    ./tests/"$t" >> "$logs/tests.log" 2>&1 || fail "$t (log: $logs/tests.log)"
    tail -2 "$logs/tests.log"
  done
  if [ -x "$root/tests/bench/bench_gpu.sh" ]; then
    step "bench_gpu"
    "$root/tests/bench/bench_gpu.sh" "$build" 2>&1 | tee "$logs/bench_gpu.log" || fail "bench_gpu (log: $logs/bench_gpu.log)"
  fi
fi
step "$failed step(s) failed; logs in $logs"
exit "$failed"
