#!/usr/bin/env bash
# Every benchmark of docs/benchmarks.md, one after the other (never two at
# once: each needs the machine's cores to itself), each printing the
# Markdown of its section. Each script builds the non-sanitizer binaries it
# needs in its own build directory; `make bench` builds build/ first only
# so that a broken tree fails fast.
#
#   bench/run-all.sh [BUILD_DIR]   (BUILD_DIR is accepted for `make bench`
#                                   and otherwise unused)
# Fuzzing is separate: bench/fuzz.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
for b in bench_branchsync bench_api bench_sse bench_orgsync bench_scale; do
  echo "## $b ($(date -u +%FT%TZ), $(nproc) cores)"
  flock /tmp/rv-bench.lock "bench/$b.sh"
  echo
done
