#!/bin/sh
# Runs the integration tests under valgrind memcheck: each test program and
# every repoview binary it starts (repoview-api, repoview-worker, repoview),
# through the harness's RV_TEST_WRAPPER hook. Fails when a test fails, when
# valgrind finds a memory error, or when memory is definitely lost.
#
#   tests/valgrind.sh [BUILD_DIR] [TEST_NAME_REGEX]
#
# BUILD_DIR (default build-vg) is configured as a Debug build without
# sanitizers (ASan and valgrind cannot share a process) and built if needed.
# TEST_NAME_REGEX picks integration tests by name (default: all of them),
# e.g. 'test_api$|test_security'. Logs: BUILD_DIR/valgrind/<pid>.log, one per
# process. Timeouts in the harness stretch by RV_TEST_TIME_SCALE (default
# 10): valgrind runs code 20-50 times slower, but most of a test is waiting.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build-vg}
filter=${2:-.}
case $build in /*) ;; *) build=$here/$build ;; esac

if ! command -v valgrind >/dev/null; then
    echo "valgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2
    exit 2
fi
if grep -q '^RV_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
    echo "valgrind.sh: $build is a sanitizer build; use another directory" >&2
    exit 2
fi
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DRV_SANITIZE=OFF \
    >/dev/null
cmake --build "$build" -j "${JOBS:-2}" >/dev/null

logs=$build/valgrind
rm -rf "$logs"
mkdir -p "$logs"
# definite leaks count as errors; possible and reachable ones (libgit2's and
# OpenSSL's global caches, threads still parked at exit) are reported only.
vg="valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite"
vg="$vg --show-leak-kinds=definite --error-exitcode=99 --num-callers=40"
vg="$vg --track-origins=yes --log-file=$logs/%q{RV_TEST_BIN}.%p.log"
export RV_TEST_WRAPPER="$vg"
export RV_TEST_TIME_SCALE=${RV_TEST_TIME_SCALE:-10}
export RV_BIN_DIR=$build

start=$(date +%s)
failed=""
ran=0
for src in "$here"/tests/integration/test_*.c; do
    name=$(basename "$src" .c)
    echo "$name" | grep -Eq -- "$filter" || continue
    ran=$((ran + 1))
    t0=$(date +%s)
    status=0
    (cd "$build/tests" && RV_TEST_BIN=$name $vg "./$name") \
        >"$logs/$name.out" 2>&1 || status=$?
    t1=$(date +%s)
    summary=$(tail -n 1 "$logs/$name.out")
    printf '%-28s exit %-3s %4ss  %s\n' "$name" "$status" $((t1 - t0)) \
        "$summary"
    [ "$status" -eq 0 ] || failed="$failed $name"
done

# A spawned binary's own error exit may not fail its test (a test that
# kills a process does not look at its status), so read every log.
bad='definitely lost|Invalid (read|write|free)|uninitialised|Mismatched'
bad="$bad|overlap|Syscall param|Jump to the invalid"
bad="$bad|default action of signal (4|6|7|8|11)"
bad_logs=""
for log in "$logs"/*.log; do
    [ -s "$log" ] || continue
    if grep -Eq "$bad" "$log"; then
        bad_logs="$bad_logs $log"
    fi
done
end=$(date +%s)

count() { ls "$logs" | grep -c "^$1\.[0-9]*\.log$" || true; }
echo "valgrind: $ran test programs in $((end - start)) s;" \
    "$(count repoview-api) repoview-api, $(count repoview-worker)" \
    "repoview-worker and $(count repoview) repoview processes checked," \
    "$(ls "$logs"/*.log 2>/dev/null | wc -l) logs in all"
if [ -n "$bad_logs" ]; then
    echo "valgrind found errors or definite leaks in:"
    for log in $bad_logs; do
        echo "  $log"
    done
fi
if [ -n "$failed" ]; then
    echo "failed:$failed (output in $logs/<name>.out)"
fi
[ -z "$failed" ] && [ -z "$bad_logs" ]
