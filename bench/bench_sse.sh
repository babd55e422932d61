#!/usr/bin/env bash
# SSE fan-out benchmark: CLIENTS concurrent streams (GET
# /v1/repos/{id}/events) on one repoview-api, opened by bench/sse_fanout.c
# (one epoll thread). Once every stream has its snapshot, `repoview refresh`
# makes one status change (idle -> queued), which the script publishes
# through Redis; the client times its arrival on every stream, both from the
# start of the CLI command and from the moment the change was published (the
# client subscribes to rv:events itself). Also the API's RSS per idle stream:
# VmRSS with all streams connected minus VmRSS before, over CLIENTS.
#
#   bench/bench_sse.sh [BUILD_DIR]   (default build-apibench; env CLIENTS=10000
#                                     RUNS=3)
#
# Uses (configuring and building it if needed) a non-sanitizer build; a
# fresh API per run, so each RSS figure starts from a clean process. Private
# redis-server on a unix socket in a temp dir, removed on exit. Loopback
# only. Prints Markdown for docs/benchmarks.md. Not part of ctest; take
# /tmp/rv-bench.lock around it on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-apibench}
CLIENTS=${CLIENTS:-10000}
RUNS=${RUNS:-3}
export LC_ALL=C

. bench/lib.sh
bench_build bench_sse "$BUILD"

# The client and the API each need a descriptor per stream.
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((CLIENTS + 64)) ]; then
  echo "bench_sse: the descriptor limit $(ulimit -n) is below $CLIENTS + 64" >&2
  exit 1
fi

tmp=$(mktemp -d /tmp/rvbench-sse.XXXXXX)
# The bench repos live here: the URL policy allows just this directory.
export REPOVIEW_ALLOW_LOCAL_PATHS="$tmp"
pids=()
api_pid=
cleanup() {
  [ -n "$api_pid" ] && kill "$api_pid" 2>/dev/null
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

cc -O2 -std=c11 -Wall -Wextra -Werror bench/sse_fanout.c -o "$tmp/sse_fanout"

redis-server --port 0 --unixsocket "$tmp/redis.sock" --save '' --appendonly no \
  --dir "$tmp" --logfile "$tmp/redis.log" &
pids+=($!)
wait_redis "$tmp/redis.sock"
export REPOVIEW_REDIS_URL="unix://$tmp/redis.sock" REPOVIEW_DATA_DIR="$tmp/data" REPOVIEW_LOG=warn

# A small repo (main and three branches), registered and synced once.
git init -q -b main "$tmp/src"
( cd "$tmp/src"
  git -c user.name=B -c user.email=b@example.com commit -q --allow-empty -m base
  for b in a b c; do
    git branch "feature/$b"
  done )
"$BUILD/repoview" add fan --url "$tmp/src" >/dev/null

status() { redis-cli -s "$tmp/redis.sock" hget 'rv:{fan}:meta' branch_sync_status; }
# Runs a worker until the repo is idle again, so the next refresh is a
# change (a refresh of a queued repo is coalesced and publishes nothing).
sync_idle() {
  "$BUILD/repoview-worker" 2>>"$tmp/worker.log" &
  local w=$!
  for _ in $(seq 600); do [ "$(status)" = idle ] && break; sleep 0.1; done
  kill "$w"; wait "$w" 2>/dev/null || true
  [ "$(status)" = idle ] || { echo "bench_sse: the repo did not sync" >&2; exit 1; }
}
sync_idle

get() { awk -F= -v k="$1" '$1 == k {print $2}' "$2"; }

rows=()
declare -a c_s rss pf p50 p99 pmax t50 t99 tmax trig
for i in $(seq "$RUNS"); do
  port=$(free_port)
  # Every client comes from 127.0.0.1: the per-address caps must fit them.
  REPOVIEW_LISTEN="127.0.0.1:$port" REPOVIEW_MAX_CLIENTS=$((CLIENTS + 1000)) \
    REPOVIEW_MAX_CLIENTS_PER_IP=$((CLIENTS + 1000)) \
    REPOVIEW_MAX_STREAMS_PER_IP=$((CLIENTS + 1000)) \
    "$BUILD/repoview-api" 2>"$tmp/api.log" &
  api_pid=$!
  wait_http "http://127.0.0.1:$port/readyz"
  out="$tmp/run$i.txt"
  if ! "$tmp/sse_fanout" -p "$port" -n "$CLIENTS" -r fan -P "$api_pid" \
      -s "$tmp/redis.sock" -t "$BUILD/repoview refresh fan >/dev/null" \
      -w 300 >"$out" 2>"$tmp/client$i.log"; then
    echo "bench_sse: run $i incomplete:" >&2; cat "$out" "$tmp/client$i.log" >&2
  fi
  kill "$api_pid"; wait "$api_pid" 2>/dev/null || true; api_pid=
  sync_idle
  c_s+=("$(get connect_s "$out")"); rss+=("$(get rss_per_client_bytes "$out")")
  pf+=("$(get pub_first_ms "$out")"); p50+=("$(get pub_p50_ms "$out")")
  p99+=("$(get pub_p99_ms "$out")"); pmax+=("$(get pub_max_ms "$out")")
  t50+=("$(get p50_ms "$out")"); t99+=("$(get p99_ms "$out")")
  tmax+=("$(get max_ms "$out")"); trig+=("$(get published_ms "$out")")
  rows+=("| $i | $(get snapshots "$out")/$CLIENTS | $(get received "$out") | ${c_s[-1]} | $(get rss_before_kib "$out") → $(get rss_after_kib "$out") | ${rss[-1]} | ${pf[-1]} / ${p50[-1]} / ${p99[-1]} / ${pmax[-1]} | ${trig[-1]} | ${t50[-1]} / ${t99[-1]} / ${tmax[-1]} |")
done

echo
echo "$CLIENTS streams on GET /v1/repos/fan/events, one API process, $(nproc) cores; one status change by \`repoview refresh fan\`."
echo
echo "| run | snapshots | got the status | connect all, s | API VmRSS KiB | RSS per stream, B | from publish: first / p50 / p99 / max, ms | CLI start to publish, ms | from CLI start: p50 / p99 / max, ms |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo "| **median** | | | $(m "${c_s[@]}") | | $(m "${rss[@]}") | $(m "${pf[@]}") / $(m "${p50[@]}") / $(m "${p99[@]}") / $(m "${pmax[@]}") | $(m "${trig[@]}") | $(m "${t50[@]}") / $(m "${t99[@]}") / $(m "${tmax[@]}") |"
