#!/usr/bin/env bash
# Builds the fuzz targets with clang and libFuzzer and runs each in turn.
# Usage: tests/fuzz/run.sh SOURCE_DIR WORK_DIR [SECONDS [TARGET...]]
#   SECONDS  per target (default: $FUZZ_SECONDS, else 15)
#   TARGET   job, webhook, github, http (default: all)
# WORK_DIR keeps the clang build (build/), the corpus each run grew
# (corpus/<target>/, so later runs start from it) and what libFuzzer found
# (artifacts/<target>/). The repo's seed corpus and regression inputs are
# read, never written. Prints one summary line per target; exits 1 when a
# target found a crash, leak, timeout or violated property, naming the
# input to reproduce it with.
set -euo pipefail

src=$(cd "$1" && pwd)
work=$2
secs=${3:-${FUZZ_SECONDS:-15}}
shift $(($# < 3 ? $# : 3))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(job webhook github http)
clang=${CLANG:-clang}
mkdir -p "$work"
work=$(cd "$work" && pwd)

need="scripts/install-deps.sh --browser installs clang and libclang-rt-14-dev"
if ! command -v "$clang" >/dev/null; then
  echo "fuzz: $clang not found; $need" >&2
  exit 1
fi
# Debian ships libFuzzer's runtime apart from clang; say so plainly.
probe="$work/probe"
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
  'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)' \
  '{ (void)d; (void)n; return 0; }' >"$probe.c"
if ! "$clang" -fsanitize=fuzzer "$probe.c" -o "$probe" 2>"$probe.log"; then
  cat "$probe.log" >&2
  echo "fuzz: $clang cannot link -fsanitize=fuzzer; $need" >&2
  exit 1
fi

# Everything is instrumented for coverage and sanitized, not only the
# targets: the code under test is the libraries. -O1 keeps it fast enough
# while stack traces stay readable.
flags="-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined"
flags+=" -fno-sanitize-recover=undefined"
cmake -S "$src" -B "$work/build" -DCMAKE_C_COMPILER="$clang" \
  -DCMAKE_BUILD_TYPE=Debug -DRV_FUZZ=ON -DCMAKE_C_FLAGS="$flags" >/dev/null
cmake --build "$work/build" -j "${FUZZ_JOBS:-2}" \
  --target "${targets[@]/#/fuzz_}" >/dev/null

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=0
for t in "${targets[@]}"; do
  corpus="$work/corpus/$t" artifacts="$work/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  rm -f "$artifacts"/*
  seeds=()
  for d in "$src/tests/fuzz/corpus/$t" "$src/tests/fuzz/regressions/$t"; do
    [ -d "$d" ] && seeds+=("$d")
  done
  dict=()
  [ -f "$src/tests/fuzz/$t.dict" ] && dict=(-dict="$src/tests/fuzz/$t.dict")
  # FUZZ_SEED and FUZZ_RUNS make a run reproducible: a fixed seed and a
  # fixed number of inputs instead of SECONDS (make test sets both, so a
  # fresh build tries the same inputs on any machine, however fast).
  # Unset, each run explores anew for SECONDS (bench/fuzz.sh).
  seed=()
  [ -n "${FUZZ_SEED:-}" ] && seed=(-seed="$FUZZ_SEED")
  budget=(-max_total_time="$secs")
  [ -n "${FUZZ_RUNS:-}" ] && budget=(-runs="$FUZZ_RUNS")
  log="$work/$t.log"
  start=$(date +%s)
  rc=0
  "$work/build/tests/fuzz_$t" "${budget[@]}" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" "${seed[@]}" \
    -artifact_prefix="$artifacts/" "$corpus" "${seeds[@]}" >"$log" 2>&1 ||
    rc=$?
  elapsed=$(($(date +%s) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)
  files=$(find "$corpus" -type f | wc -l)
  echo "fuzz $t: ${elapsed}s, ${execs:-?} execs, ${rate:-?} execs/s," \
    "${cov:-cov: ?}, corpus $files inputs"
  if [ $rc -ne 0 ]; then
    failed=1
    grep -E 'ERROR|SUMMARY|property violated|runtime error|==[0-9]+==' \
      "$log" | head -20 >&2 || true
    for a in "$artifacts"/*; do
      [ -f "$a" ] || continue
      echo "fuzz $t: FOUND $a" >&2
      echo "  reproduce: $work/build/tests/fuzz_$t $a" >&2
      echo "  keep it:   cp $a $src/tests/fuzz/regressions/$t/" >&2
    done
    echo "fuzz $t: exit $rc; the full log is $log" >&2
  fi
done
exit $failed
