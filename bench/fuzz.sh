#!/usr/bin/env bash
# Longer libFuzzer runs of every target in tests/fuzz (make test runs each
# for 200,000 inputs from a fixed seed): FUZZ_SECONDS per target, unseeded, one after the other, niced, so the
# machine stays usable. The clang build and the corpus each run grows stay
# in WORK (bench/out/fuzz), so repeated runs start where the last one
# stopped. Prints, per target, the seconds, executions, execs/s, coverage
# (libFuzzer's cov: edges, ft: features) and corpus size; exits 1 when a
# target found a crash, leak, timeout or violated property, naming the
# input (copy it to tests/fuzz/regressions/<target>/ once fixed).
#
#   bench/fuzz.sh [TARGET...]   (env: FUZZ_SECONDS=300 WORK=bench/out/fuzz
#                                FUZZ_JOBS=2 for the build)
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-300}
WORK=${WORK:-bench/out/fuzz}
echo "fuzzing $FUZZ_SECONDS s per target on $(nproc) cores, $(date -u +%F)"
exec nice -n 10 tests/fuzz/run.sh . "$WORK" "$FUZZ_SECONDS" "$@"
