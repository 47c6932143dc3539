#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) into build-fuzz/ and runs each one.
#   tests/fuzz/run.sh [SECONDS] [TARGET ...]     (default: 20 s each, every target)
#   FUZZ_JOBS=2 tests/fuzz/run.sh 600            (two targets at a time)
# Each target starts from its committed seeds (tests/fuzz/corpus/<name>/) plus what earlier runs
# found (build-fuzz/corpus/<name>/, not committed). A crash, a leak, a sanitizer report, a
# timeout (10 s on one input) or more than 2 GiB of memory is a finding: its input is saved as
# build-fuzz/findings/<target>-crash-..., the run goes on with the other targets, and the script
# exits 1. Every finding fixed becomes a regression seed in tests/fuzz/corpus/<name>/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${FUZZ_BUILD:-$root/build-fuzz}"
secs="${1:-20}"
shift || true
jobs="${FUZZ_JOBS:-1}"

"$root/launch/install.sh" --packages-only clang libclang-rt-14-dev time  # libFuzzer, sanitizers, CPU times

CC=clang CXX=clang++ cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
echo "[fuzz] building the targets in $build"
cmake --build "$build" -j "$(nproc)" 2>&1 | grep -E "error|warning: .*fuzz|Built target fuzz_" || true
[ -x "$build/fuzz_jsonl" ] || { echo "[fuzz] build failed: cmake --build $build"; exit 1; }

targets=("$@")
if ((${#targets[@]} == 0)); then
  for f in "$here"/fuzz_*.cpp; do targets+=("$(basename "$f" .cpp | sed 's/^fuzz_//')"); done
fi
mkdir -p "$build/findings" "$build/logs"

run_one() {
  local t="$1" seeds="$here/corpus/$1" work="$build/corpus/$1"
  mkdir -p "$work"
  # ASan's leak check and libFuzzer's own limits; no core files. Quiet output, one log per target.
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 UBSAN_OPTIONS=print_stacktrace=1 \
    /usr/bin/time -o "$build/logs/$t.time" -f "%U %S" \
    "$build/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="$build/findings/$t-" "$work" "$seeds" >"$build/logs/$t.log" 2>&1
}

declare -A status
pids=()
for t in "${targets[@]}"; do
  [ -x "$build/fuzz_$t" ] || { echo "[fuzz] no target fuzz_$t (targets: tests/fuzz/fuzz_*.cpp)"; exit 64; }
  run_one "$t" & pids+=("$!:$t")
  while (($(jobs -rp | wc -l) >= jobs)); do sleep 1; done
done
fail=0
printf "%-16s %12s %10s %8s %8s  %s\n" target executions exec/s cpu_s corpus result
for pt in "${pids[@]}"; do
  pid="${pt%%:*}"; t="${pt#*:}"
  if wait "$pid"; then result=ok; else result="FINDING (see $build/logs/$t.log, $build/findings/)"; fail=1; fi
  log="$build/logs/$t.log"
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  corpus=$(find "$build/corpus/$t" -type f | wc -l)
  cpu=$(awk '{printf "%d", $1 + $2}' "$build/logs/$t.time" 2>/dev/null || echo "?")
  printf "%-16s %12s %10s %8s %8s  %s\n" "$t" "$execs" "$rate" "$cpu" "$corpus" "$result"
done
exit "$fail"
