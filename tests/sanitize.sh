#!/usr/bin/env bash
# The whole test suite under AddressSanitizer and UndefinedBehaviorSanitizer:
#   tests/sanitize.sh [build-dir] [ctest args...]     (default build-asan; about 3x the plain run)
# Builds ethos with -DETHOS_SANITIZE=ON into its own directory and runs ctest there. Any report
# (a heap overflow, a use after free, undefined behaviour, a leak in ethos's code) fails its test.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build-asan}"
shift || true
"$root/launch/install.sh" --packages-only
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS=-g1 -DETHOS_SANITIZE=ON >/dev/null
echo "[sanitize] building in $build"
cmake --build "$build" -j "$(nproc)"
# detect_leaks=0: LibTorch and OpenMP keep allocations for the life of the process, and LSan
# reports those at every exit; ethos's own leaks are left to the fuzzers, which check each input.
# UBSan stops at the first report (-fno-sanitize-recover), with a stack.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
cd "$build"
ctest --output-on-failure --timeout 2700 -j 1 "$@"
