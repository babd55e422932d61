#!/usr/bin/env bash
# Scale benchmark (issue 15): what a repo costs Redis, and what requests and
# housekeeping passes cost, with 100, 1,000, 10,000 and 100,000 repos
# registered. Each size gets a fresh Redis (unix socket) and API.
#
#   - Up to REAL_MAX repos (default 1,000) are real: copies of a small
#     generated git repo (git fast-import, 3 branches), registered with a GitHub name
#     whose PRs the loopback fake GitHub serves (tests/fake-github,
#     scenario "mixed"), synced by 4 real workers: once (clones), then all
#     again (a user refresh of both kinds: the steady-state re-sync, whose
#     rate is what 4 workers sustain here).
#   - Above that, bench/scale_driver.c registers the repos through the
#     registry (registerRepo) and runs every queued job as a worker does,
#     Redis-wise (claimJob, the worker's reads, commitProjection), with the
#     sync replaced by the documents a real worker wrote for a template
#     repo. So Redis and the API see that many repos and their projections.
#   - At every size the driver also re-syncs a sample (RESYNC repos, both
#     kinds) for Redis CPU and commands per sync, measured the same way at
#     every size; at the real sizes the workers' own figures are given too.
#   - Requests are timed with curl (time_total), RUNS each: a signed push
#     webhook, GET /v1/repos?limit=100 (first page, and a page from the
#     middle), an overview, a refresh; an SSE connect to /v1/events until
#     its snapshot-needed event; then the driver times the worker's
#     housekeeping functions: a reconcile pass, a mirror clean-up step
#     (rv_mirror_gc_step, as the worker runs it once a second) and a whole
#     walk of them, over one mirror directory per repo (the real ones, or
#     empty ones),
#     a scheduler tick with nothing due and one with everything due.
#
#   bench/bench_scale.sh [BUILD_DIR]   (default build-apibench; env
#                                       SIZES="100 1000 10000 100000"
#                                       RUNS=21 HK_RUNS=5 GC_RUNS=3
#                                       REAL_MAX=1000 RESYNC=5000)
#
# Prints a Markdown table for docs/benchmarks.md. Loopback only. Take
# /tmp/rv-bench.lock around it on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-apibench}
SIZES=${SIZES:-100 1000 10000 100000}
RUNS=${RUNS:-21}
HK_RUNS=${HK_RUNS:-5}
GC_RUNS=${GC_RUNS:-3}
REAL_MAX=${REAL_MAX:-1000}
RESYNC=${RESYNC:-5000}
SECRET=bench-scale-secret
export LC_ALL=C
. bench/lib.sh
[ -d tests/node_modules/@octokit ] || scripts/install-node-deps.sh >/dev/null

tmp=$(mktemp -d /tmp/rvbench-scale.XXXXXX)
export REPOVIEW_ALLOW_LOCAL_PATHS="$tmp"
bench_driver "$BUILD" bench/scale_driver.c "$tmp/driver"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

# The fake GitHub, for the real workers' PR syncs.
fake_github_start "$tmp" benchpat
export GITHUB_TOKEN=benchpat REPOVIEW_GITHUB_API=$fake REPOVIEW_LOG=warn
export REPOVIEW_WEBHOOK_SECRET=$SECRET

# gen_repo PATH SEED: a small bare repo: 4 commits on main, 3 branches of
# one commit each. The real repos are copies of the template's.
gen_repo() {
  git init -q --bare -b main "$1"
  awk -v seed="$2" 'BEGIN {
    t = 1700000000
    for (i = 1; i <= 4; i++) {
      s = "repo " seed " line " i "\n"
      printf "commit refs/heads/main\nmark :%d\ncommitter B <b@example.com> %d +0000\ndata 4\nmain\n", i, t + i
      if (i > 1) printf "from :%d\n", i - 1
      printf "M 100644 inline f%d.txt\ndata %d\n%s\n", i, length(s), s
    }
    for (b = 1; b <= 3; b++) {
      s = "branch " b "\n"
      printf "commit refs/heads/topic-%d\ncommitter B <b@example.com> %d +0000\ndata 6\ntopic\nfrom :%d\n", b, t + 10 + b, b + 1
      printf "M 100644 inline b%d.txt\ndata %d\n%s\n", b, length(s), s
    }
  }' | git -C "$1" fast-import --quiet
}

# Per size: a fresh Redis on a unix socket, and the helpers around it.
start_redis() {
  dir=$tmp/n$1
  mkdir -p "$dir"
  sock=$dir/redis.sock
  redis-server --port 0 --unixsocket "$sock" --save '' --appendonly no --dir "$dir" --logfile "$dir/redis.log" &
  redis_pid=$!
  pids+=($redis_pid)
  wait_redis "$sock"
  size_start=$(date +%s%3N)
  export REPOVIEW_REDIS_URL="unix://$sock" REPOVIEW_DATA_DIR="$dir/data"
}
rc() { redis-cli -s "$sock" "$@"; }
info() { rc info "$1" | tr -d '\r' | awk -F: -v k="$2" '$1 == k {print $2}'; }
cmds() { info stats total_commands_processed; }
cpu_us() { rc info cpu | tr -d '\r' | awk -F: '/^used_cpu_(sys|user):/ {s += $2} END {printf "%.0f", s * 1e6}'; }
mem() { info memory used_memory; }

# ended_syncs FIELDS...: the sum of those fields (done:branches, ...) of
# the history hashes the commit scripts keep, over the minutes since this
# size's Redis started.
ended_syncs() {
  local m total=0 v
  for m in $(seq $((size_start / 60000)) $(($(date +%s%3N) / 60000))); do
    for v in $(rc hmget "rv:stats:$m" "$@"); do
      [ -n "$v" ] && total=$((total + v))
    done
  done
  echo "$total"
}
ENDED=(done:branches done:prs failed:branches failed:prs)
FAILED=(failed:branches failed:prs)

# wait_syncs TOTAL: waits (up to 10 minutes) until TOTAL syncs ended.
wait_syncs() {
  for _ in $(seq 6000); do
    [ "$(ended_syncs "${ENDED[@]}")" -ge "$1" ] && return 0
    sleep 0.1
  done
  echo "bench_scale: only $(ended_syncs "${ENDED[@]}") of $1 syncs ended" >&2
  return 1
}

start_workers() {
  workers=()
  for w in 1 2 3 4; do
    "$BUILD/repoview-worker" 2>>"$dir/worker$w.log" &
    workers+=($!)
    pids+=($!)
  done
}
stop_workers() { for p in "${workers[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done; }

start_api() {
  port=$(free_port)
  REPOVIEW_LISTEN=127.0.0.1:$port "$BUILD/repoview-api" 2>"$dir/api.log" &
  api_pid=$!
  pids+=($api_pid)
  base=http://127.0.0.1:$port
  wait_http "$base/readyz"
}

# The template: one real repo synced by a real worker, whose documents the
# driver writes for every repo above REAL_MAX.
template() {
  start_redis tpl
  gen_repo "$tmp/tpl.git" 0
  "$BUILD/repoview" add tpl --url "$tmp/tpl.git" --github acme/mixed >/dev/null
  "$BUILD/repoview-worker" 2>"$dir/worker.log" &
  local wpid=$!
  pids+=($wpid)
  for _ in $(seq 200); do
    [ "$(rc hmget 'rv:{tpl}:meta' branch_sync_status pr_sync_status | tr '\n' ' ')" = "idle idle " ] &&
      [ -n "$(rc hget 'rv:{tpl}:meta' pr_sync_at)" ] && break
    sleep 0.05
  done
  kill "$wpid"
  wait "$wpid" 2>/dev/null || true
  rc --raw get 'rv:{tpl}:branches' >"$tmp/branches.json"
  rc --raw get 'rv:{tpl}:prs' >"$tmp/prs.json"
  [ -s "$tmp/branches.json" ] && [ -s "$tmp/prs.json" ] || {
    echo "bench_scale: the template repo did not sync" >&2
    exit 1
  }
  kill "$redis_pid"
  wait "$redis_pid" 2>/dev/null || true
}

# Results: R[<size>,<measure>].
declare -A R

# per_sync N TAG CMD...: runs CMD (which makes syncs happen, ends when
# they did and writes their number to $dir/syncs), records Redis CPU (µs)
# and commands per sync under TAG. The requests that queued the syncs are
# counted in.
per_sync() {
  local n=$1 tag=$2
  shift 2
  local c0 u0 c1 u1 syncs
  c0=$(cmds)
  u0=$(cpu_us)
  "$@"
  syncs=$(cat "$dir/syncs")
  c1=$(cmds)
  u1=$(cpu_us)
  R[$n,${tag}_cpu]=$(awk -v a="$u0" -v b="$u1" -v s="$syncs" 'BEGIN {printf "%.1f", (b - a) / s}')
  R[$n,${tag}_cmds]=$(awk -v a="$c0" -v b="$c1" -v s="$syncs" 'BEGIN {printf "%.1f", (b - a - 2) / s}')
}

# Re-syncs the sample through the driver.
driver_resync() {
  "$tmp/driver" refresh "$n" "$k"
  "$tmp/driver" drain "$tmp/branches.json" "$tmp/prs.json" |
    awk '$1 == "drain_syncs" {print $2}' >"$dir/syncs"
}

# Re-syncs every real repo with the workers, and records their rate.
workers_resync() {
  local before failed0 t0 t1
  before=$(ended_syncs "${ENDED[@]}")
  failed0=$(ended_syncs "${FAILED[@]}")
  t0=$(date +%s%N)
  "$tmp/driver" refresh "$n" "$n"
  wait_syncs $((before + 2 * n))
  t1=$(date +%s%N)
  R[$n,rate]=$(awk -v n=$((2 * n)) -v ns=$((t1 - t0)) 'BEGIN {printf "%.0f", n / (ns / 1e9)}')
  R[$n,failed]=$(($(ended_syncs "${FAILED[@]}") - failed0))
  echo $((2 * n)) >"$dir/syncs"
}

# The CPU time (ns) the API and its Redis have had, every thread of both
# (schedstat: nanoseconds, where /proc's stat counts 10 ms ticks). Unlike
# a request's wall time it does not grow when other work shares the cores.
server_ns() {
  cat /proc/"$api_pid"/task/*/schedstat /proc/"$redis_pid"/task/*/schedstat 2>/dev/null |
    awk '{t += $1} END {printf "%.0f", t}'
}

# settle: waits (at most 120 s) until the API and Redis use under 2% of a
# core over half a second, so that work left from the set-up (the
# pub/sub events of the re-synced sample) is not counted against the
# requests timed next; records how long that took under settle_s.
settle() {
  local a b t0=$SECONDS
  a=$(server_ns)
  while [ $((SECONDS - t0)) -lt 120 ]; do
    sleep 0.5
    b=$(server_ns)
    [ $((b - a)) -lt 10000000 ] && break
    a=$b
  done
  R[$n,settle_s]=$((SECONDS - t0))
}

# timed NAME CMD...: runs CMD (a curl printing its time_total and status)
# RUNS times; records the median and p95 (ms) under NAME, and the API's
# and Redis's CPU per request (µs, the mean over the runs) under NAME_cpu.
timed() {
  local name=$1 i s0 s1
  shift
  s0=$(server_ns)
  for i in $(seq "$RUNS"); do "$@" "$i"; done >"$dir/$name.times"
  s1=$(server_ns)
  R[$n,${name}_cpu]=$(awk -v a="$s0" -v b="$s1" -v r="$RUNS" 'BEGIN {printf "%.0f", (b - a) / r / 1000}')
  if grep -qv ' 20[0-9]$' "$dir/$name.times"; then
    echo "bench_scale: $name answered $(grep -v ' 20[0-9]$' "$dir/$name.times" | head -1)" >&2
    exit 1
  fi
  R[$n,$name]=$(awk '{print $1 * 1000}' "$dir/$name.times" | median)
  R[$n,${name}_p95]=$(awk '{print $1 * 1000}' "$dir/$name.times" | sort -n |
    awk -v r="$RUNS" '{a[NR] = $1} END {print a[int((r - 1) * 0.95 + 0.5) + 1]}')
}
rid() { printf 's%06d' $(((${1} * 7919) % n)); }
CURL=(curl -s -o /dev/null -w '%{time_total} %{http_code}\n')
t_webhook() {
  local body sig
  body="{\"ref\":\"refs/heads/main\",\"repository\":{\"full_name\":\"acme/$(rid "$1")\"}}"
  sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$SECRET" | awk '{print $NF}')
  "${CURL[@]}" -X POST -H 'X-GitHub-Event: push' -H "X-GitHub-Delivery: d-$n-$1" \
    -H "X-Hub-Signature-256: sha256=$sig" --data-binary "$body" "$base/v1/webhooks/github"
}
t_page1() { "${CURL[@]}" "$base/v1/repos?limit=100"; }
t_pagemid() { "${CURL[@]}" "$base/v1/repos?limit=100&cursor=$(printf 's%06d' $((n / 2)))"; }
t_overview() { "${CURL[@]}" "$base/v1/repos/$(rid "$1")/overview"; }
t_refresh() { "${CURL[@]}" -X POST "$base/v1/repos/$(rid "$1")/refresh"; }
t_sse() {
  python3 - "$port" <<'EOF'
import socket, sys, time
t = time.monotonic()
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /v1/events HTTP/1.1\r\nHost: localhost\r\n\r\n")
got = b""
while b"event: snapshot-needed" not in got:
    chunk = s.recv(65536)
    if not chunk:
        sys.exit("the stream ended before snapshot-needed")
    got += chunk
print("%.6f 200" % (time.monotonic() - t))
EOF
}

run_size() {
  n=$1
  k=$((n < RESYNC ? n : RESYNC))
  start_redis "$n"
  local m0 t0
  m0=$(mem)
  t0=$(date +%s%N)
  if [ "$n" -le "$REAL_MAX" ]; then
    # Copies of the template repo (each its own remote and mirror), each
    # with the fake's PRs: one process for the copies, one for the fake.
    python3 - "$tmp/tpl.git" "$dir/repos" "$n" "$fake" <<'EOF'
import http.client, json, shutil, sys, urllib.parse
src, dst, n, fake = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
u = urllib.parse.urlparse(fake)
c = http.client.HTTPConnection(u.hostname, u.port)
for i in range(n):
    shutil.copytree(src, "%s/s%06d.git" % (dst, i))
    c.request("POST", "/_control", json.dumps({"repo": "acme/s%06d" % i, "scenario": "mixed"}))
    r = c.getresponse()
    r.read()
    if r.status != 200:
        sys.exit("the fake GitHub answered %d" % r.status)
EOF
    "$tmp/driver" register "$n" "$dir/repos/" >/dev/null
    echo "bench_scale: $n repos generated ($(date -u +%T))" >&2
    start_workers
    wait_syncs $((2 * n))
    R[$n,first_failed]=$(ended_syncs "${FAILED[@]}")
    echo "bench_scale: first syncs done ($(date -u +%T))" >&2
    per_sync "$n" real workers_resync
    stop_workers
  else
    "$tmp/driver" register "$n" "https://github.com/acme/" >/dev/null
    "$tmp/driver" drain "$tmp/branches.json" "$tmp/prs.json" >/dev/null
    "$tmp/driver" mirrors "$dir/data" "$n"
  fi
  R[$n,setup_s]=$((($(date +%s%N) - t0) / 1000000000))
  R[$n,mem]=$((($(mem) - m0) / n))
  start_api
  # The API's start (script loads, its first reads) is not a sync's cost.
  sleep 1
  per_sync "$n" drv driver_resync
  settle
  timed webhook t_webhook
  timed page1 t_page1
  timed pagemid t_pagemid
  timed overview t_overview
  timed refresh t_refresh
  timed sse t_sse
  "$tmp/driver" housekeeping "$dir/data" "$HK_RUNS" "$GC_RUNS" >"$dir/hk.out"
  while read -r key val; do R[$n,${key%_ms}]=$val; done <"$dir/hk.out"
  kill "$api_pid" "$redis_pid"
  wait "$api_pid" "$redis_pid" 2>/dev/null || true
  rm -rf "$dir"
}

template
for s in $SIZES; do
  echo "bench_scale: $s repos ($(date -u +%T))" >&2
  run_size "$s"
done

# The table: a row per measure, a column per size, and the ratio of the
# largest size to 1,000 when both were run.
sizes=($SIZES)
last=${sizes[-1]}
has1k=0
for s in $SIZES; do [ "$s" = 1000 ] && has1k=1; done
row() {
  local label=$1 key=$2 s line="| $1 |"
  for s in $SIZES; do line="$line ${R[$s,$key]:--} |"; done
  if [ "$has1k" = 1 ] && [ "$last" != 1000 ] && [ -n "${R[1000,$key]:-}" ] && [ -n "${R[$last,$key]:-}" ]; then
    line="$line $(awk -v a="${R[1000,$key]}" -v b="${R[$last,$key]}" 'BEGIN {printf (a > 0 ? "%.2f×" : "-"), b / a}') |"
  else
    line="$line |"
  fi
  echo "$line"
}
hdr="| measure |"
sep="|---|"
for s in $SIZES; do hdr="$hdr $s repos |"; sep="$sep---:|"; done
echo
echo "$(nproc) cores, RUNS=$RUNS (median; p95 in brackets where timed), $(date -u +%F)"
echo
echo "$hdr 1,000 → $last |"
echo "$sep---:|"
row "Redis memory per repo (B)" mem
row "Redis CPU per sync, driver (µs)" drv_cpu
row "commands per sync, driver" drv_cmds
row "Redis CPU per sync, 4 real workers (µs)" real_cpu
row "commands per sync, 4 real workers" real_cmds
for m in webhook:"webhook routed (ms)" page1:"GET /v1/repos?limit=100, first page (ms)" \
         pagemid:"GET /v1/repos?limit=100, middle page (ms)" overview:"overview (ms)" \
         refresh:"POST refresh (ms)" sse:"SSE /v1/events to snapshot-needed (ms)" \
         tick_idle:"scheduler tick, nothing due (ms)" tick_due:"scheduler tick, 100 due (ms)" \
         reconcile:"reconcile pass (ms)" mirror_gc:"mirror clean-up step, 500 mirrors (ms)" \
         mirror_walk:"mirror clean-up, a whole walk of the steps (ms)"; do
  key=${m%%:*}
  for s in $SIZES; do
    [ -n "${R[$s,$key]:-}" ] && R[$s,${key}_cell]="${R[$s,$key]} (${R[$s,${key}_p95]:-?})"
  done
  row "${m#*:}" "${key}_cell"
done
for m in webhook:"webhook routed" page1:"GET /v1/repos?limit=100, first page" \
         pagemid:"GET /v1/repos?limit=100, middle page" overview:"overview" \
         refresh:"POST refresh" sse:"SSE /v1/events to snapshot-needed"; do
  row "${m#*:}: API + Redis CPU per request (µs)" "${m%%:*}_cpu"
done
echo
for s in $SIZES; do
  need=$(awk -v n="$s" 'BEGIN {printf "%.1f", 2 * n / 300}')
  line="- $s repos: the schedule asks $need syncs/s (both kinds, 300 s)"
  [ -n "${R[$s,rate]:-}" ] && line="$line; 4 workers re-synced at ${R[$s,rate]} syncs/s (${R[$s,failed]} failed; first syncs failed: ${R[$s,first_failed]})"
  cpu=${R[$s,real_cpu]:-${R[$s,drv_cpu]}}
  line="$line; Redis at $(awk -v c="$cpu" -v r="$need" 'BEGIN {printf "%.2f%%", c * r / 1e4}') of a core for them, headroom $(awk -v c="$cpu" -v r="$need" 'BEGIN {printf "%.0f×", 1e6 / (c * r)}'); setup ${R[$s,setup_s]} s, then ${R[$s,settle_s]} s until the API and Redis were idle"
  echo "$line"
done
