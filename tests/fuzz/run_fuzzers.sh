#!/usr/bin/env bash
# Builds every libFuzzer target tests/fuzz/fuzz_*.cpp with clang++ (ASan + UBSan + libFuzzer)
# and runs each for its share of a time budget.
#
#   tests/fuzz/run_fuzzers.sh [total_seconds]      # default 60, split evenly among the targets
#
# For a target fuzz_NAME.cpp:
#   seeds        tests/fuzz/corpus/fuzz_NAME/        (committed, read-only here)
#   regressions  tests/fuzz/regressions/fuzz_NAME/   (every crash ever found; replayed first)
#   work corpus  tests/fuzz/corpus-work/fuzz_NAME/   (git-ignored; grows across runs)
#   binaries     $MINICNN_FUZZ_BUILD_DIR (default build-fuzz/), crash artifacts in artifacts-fuzz_NAME/
# Exits non-zero if a target fails to build, or on any crash, leak, timeout, out-of-memory or
# undefined behaviour (UBSan aborts: -fno-sanitize-recover=all). The targets run one after
# another, one process each. Environment: CXX_FUZZ (default clang++).
set -uo pipefail

total_seconds=${1:-60}
if ! [[ "$total_seconds" =~ ^[0-9]+$ ]] || [ "$total_seconds" -lt 1 ]; then
  echo "usage: $0 [total_seconds >= 1]" >&2
  exit 2
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fuzz_dir=$root/tests/fuzz
build_dir=${MINICNN_FUZZ_BUILD_DIR:-$root/build-fuzz}
work_dir=$fuzz_dir/corpus-work
cxx=${CXX_FUZZ:-clang++}

if ! command -v "$cxx" >/dev/null 2>&1; then
  echo "run_fuzzers: $cxx not found (apt-get install clang-14 libclang-rt-14-dev)" >&2
  exit 2
fi
eigen_flags=$(pkg-config --cflags eigen3 2>/dev/null || echo "-isystem /usr/include/eigen3")
eigen_flags=${eigen_flags//-I/-isystem }

shopt -s nullglob
targets=("$fuzz_dir"/fuzz_*.cpp)
if [ ${#targets[@]} -eq 0 ]; then
  echo "run_fuzzers: no tests/fuzz/fuzz_*.cpp targets" >&2
  exit 2
fi
per_target=$(( total_seconds / ${#targets[@]} ))
[ "$per_target" -lt 1 ] && per_target=1
mkdir -p "$build_dir"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

failed=()
for source in "${targets[@]}"; do
  name=$(basename "$source" .cpp)
  binary=$build_dir/$name
  echo "=== $name: building with $cxx"
  # shellcheck disable=SC2086
  if ! "$cxx" -std=c++17 -O1 -g -fno-omit-frame-pointer \
      -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
      -I"$root/include" -I"$fuzz_dir" $eigen_flags "$source" -lz -o "$binary"; then
    echo "=== $name: BUILD FAILED" >&2
    failed+=("$name (build)")
    continue
  fi

  regressions=("$fuzz_dir/regressions/$name"/*)
  if [ ${#regressions[@]} -gt 0 ]; then
    echo "=== $name: replaying ${#regressions[@]} regression inputs"
    if ! "$binary" -rss_limit_mb=2048 -timeout=10 "${regressions[@]}" >"$build_dir/$name.regressions.log" 2>&1; then
      cat "$build_dir/$name.regressions.log" >&2
      echo "=== $name: A REGRESSION INPUT FAILS" >&2
      failed+=("$name (regressions)")
      continue
    fi
  fi

  mkdir -p "$work_dir/$name" "$build_dir/artifacts-$name"
  seeds=()
  [ -d "$fuzz_dir/corpus/$name" ] && seeds+=("$fuzz_dir/corpus/$name")
  [ -d "$fuzz_dir/regressions/$name" ] && seeds+=("$fuzz_dir/regressions/$name")
  echo "=== $name: fuzzing for ${per_target}s"
  # New inputs go to the first corpus directory (the git-ignored work corpus).
  "$binary" -max_total_time="$per_target" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
      -artifact_prefix="$build_dir/artifacts-$name/" "$work_dir/$name" "${seeds[@]}" \
      >"$build_dir/$name.log" 2>&1
  status=$?
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ *DONE)' "$build_dir/$name.log" || true
  if [ $status -ne 0 ]; then
    tail -n 60 "$build_dir/$name.log" >&2
    echo "=== $name: FAILED (exit $status); crash inputs in $build_dir/artifacts-$name/ -" >&2
    echo "    fix the bug, then copy them into tests/fuzz/regressions/$name/" >&2
    failed+=("$name")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "run_fuzzers: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "run_fuzzers: all ${#targets[@]} target(s) ran ${per_target}s each without a finding"
