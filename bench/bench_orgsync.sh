#!/usr/bin/env bash
# Org sync benchmark: one real worker lists an org of N repositories (100 a
# page) at the loopback fake GitHub (tests/fake-github) with GITHUB_TOKEN,
# and keeps the registered repos in step. Three cases, each run RUNS times:
#   cold     the org registered afresh: every page a 200, N repos added
#   warm     nothing changed: every page a 304 (GitHub does not count it)
#   changed  5 repositories added and 5 removed: every page a 200, then
#            every page asked again (304s) before anything is removed
# For each: the worker's own duration of the run ("ms" of its "org sync
# done" log line), the requests the fake saw, and the Redis commands the
# run cost (INFO's total_commands_processed). The repos' own first syncs
# are dropped from the queue after each run, so only org syncs are timed.
#
#   bench/bench_orgsync.sh [BUILD_DIR]  (default build-apibench; a
#                                        non-sanitizer build; env N=1000
#                                        RUNS=5)
#
# Prints a Markdown table for docs/benchmarks.md. Loopback only. Take
# /tmp/rv-bench.lock around it on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-apibench}
N=${N:-1000}
RUNS=${RUNS:-5}
. bench/lib.sh
bench_build bench_orgsync "$BUILD"
[ -d tests/node_modules/@octokit ] || scripts/install-node-deps.sh >/dev/null

tmp=$(mktemp -d /tmp/rvbench-org.XXXXXX)
export REPOVIEW_ALLOW_LOCAL_PATHS="$tmp"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

redis-server --port 0 --unixsocket "$tmp/redis.sock" --save '' --appendonly no --dir "$tmp" --logfile "$tmp/redis.log" &
pids+=($!)
wait_redis "$tmp/redis.sock"
rc() { redis-cli -s "$tmp/redis.sock" "$@"; }

fake_github_start "$tmp" benchpat
control() { curl -sf -X POST -d "$1" "$fake/_control" >/dev/null; }
requests() { curl -sf "$fake/_requests" | node -e '
  let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{
  const r=JSON.parse(s).filter(x=>x.kind==="listing");
  const c=(st)=>r.filter(x=>x.status===st).length;
  console.log(`${c(200)} ${c(304)}`)})'; }

git init -q -b main "$tmp/work"
git -C "$tmp/work" -c user.name=B -c user.email=b@example.com commit -q --allow-empty -m one
git clone -q --bare "$tmp/work" "$tmp/bare.git"
control "{\"orgRepos\":{\"owner\":\"acme\",\"count\":$N,\"cloneUrl\":\"file://$tmp/bare.git\",\"firstId\":100000}}"

export REPOVIEW_REDIS_URL="unix://$tmp/redis.sock" REPOVIEW_DATA_DIR="$tmp/data" REPOVIEW_LOG=info
export GITHUB_TOKEN=benchpat REPOVIEW_GITHUB_API=$fake
"$BUILD/repoview-worker" 2>"$tmp/worker.log" &
pids+=($!)

# run CMD...: runs CMD (which queues an org sync), waits for it to end,
# drops the repos' first syncs, prints "ms 200s 304s commands".
run() {
  control '{"clearRequests":true}'
  local before done_lines cmds0 cmds1
  done_lines=$(grep -c '"org sync done"' "$tmp/worker.log" || true)
  cmds0=$(rc info stats | tr -d '\r' | awk -F: '/^total_commands_processed/{print $2}')
  "$@" >/dev/null
  for _ in $(seq 1200); do
    [ "$(grep -c '"org sync done"' "$tmp/worker.log" || true)" -gt "$done_lines" ] && break
    sleep 0.05
  done
  cmds1=$(rc info stats | tr -d '\r' | awk -F: '/^total_commands_processed/{print $2}')
  rc del rv:queue >/dev/null
  local ms
  ms=$(grep '"org sync done"' "$tmp/worker.log" | tail -1 | sed 's/.*"ms":\([0-9]*\).*/\1/')
  echo "$ms $(requests) $((cmds1 - cmds0))"
}

declare -A res
for i in $(seq "$RUNS"); do
  res[cold]+="$(run "$BUILD/repoview" org add acme --github acme)"$'\n'
  for _ in $(seq 2); do # the second warm run is the steady one
    w=$(run "$BUILD/repoview" org refresh acme)
  done
  res[warm]+="$w"$'\n'
  for k in $(seq 5); do
    control "{\"orgRepoOp\":{\"owner\":\"acme\",\"op\":\"add\",\"name\":\"new-$i-$k\"}}"
    control "{\"orgRepoOp\":{\"owner\":\"acme\",\"op\":\"remove\",\"name\":\"repo-$(printf %03d $((i * 10 + k)))\"}}"
  done
  res[changed]+="$(run "$BUILD/repoview" org refresh acme)"$'\n'
  "$BUILD/repoview" org remove acme >/dev/null
  rc del rv:queue >/dev/null
done

col() { printf '%s' "${res[$1]}" | awk -v c="$2" 'NF{print $c}' | median; }
echo "Org sync of $N repositories ($((N / 100 + (N % 100 > 0))) pages), one worker, fake GitHub on loopback, median of $RUNS:"
echo
echo "| case | worker ms | listing 200s | listing 304s | Redis commands | commands per repo |"
echo "|---|---|---|---|---|---|"
for k in cold warm changed; do
  c=$(col "$k" 4)
  echo "| $k | $(col "$k" 1) | $(col "$k" 2) | $(col "$k" 3) | $c | $(awk -v c="$c" -v n="$N" 'BEGIN{printf "%.1f", c/n}') |"
done
