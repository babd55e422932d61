#!/usr/bin/env bash
# API read benchmark: GET /v1/repos/{id}/overview of a 50-branch repo with wrk
# (1 thread, 50 connections), side by side in one run with nginx serving the
# same bytes as a static file; then the latency of a 1,000-branch repo.
# Then the compressed reads: the API with Accept-Encoding: gzip and br
# against nginx serving the API's own compressed bytes, gzip_static on for
# gzip and, since Debian's nginx has no brotli module, a location that
# sends the .br file with Content-Encoding: br; and the bytes on the wire
# of both overviews in each coding.
# Besides requests per second and p99, the CPU time each server spent per
# request (utime + stime from /proc; for the API its Redis too), which stays
# comparable when other work shares the machine.
#
# With two or more cores the servers (and the API's Redis) run on CPU 0 and
# wrk on CPU 1, so each side has a core of its own and neither is moved
# about. The rounds alternate (API, nginx, API 1,000), and the ratio quoted
# is the median of the API/nginx ratios of adjacent rounds: the speed of a
# shared virtual machine drifts by tens of percent within a minute, which
# the ratio of two medians taken minutes apart would carry.
#
#   bench/bench_api.sh [BUILD_DIR]   (default build-apibench, configured and
#                                     built if needed; a non-sanitizer build;
#                                     env DURATION=2s RUNS=15; TOKEN=1
#                                     configures a read token, which every
#                                     API request then sends as a bearer)
#
# Prints a Markdown table for docs/benchmarks.md. Loopback only; bounded runs.
# Take /tmp/rv-bench.lock around it on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-apibench}
DURATION=${DURATION:-2s}
RUNS=${RUNS:-15}
. bench/lib.sh
bench_build bench_api "$BUILD"
for p in wrk nginx-light; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || {
    apt-get update -q >/dev/null && apt-get install -y -q "$p" >/dev/null; }
done

# Command prefixes that pin to CPU 0 and 1 when there are two or more.
# (taskset execs the command, so $! is still the server's pid.)
on0=(); on1=()
if [ "$(nproc)" -ge 2 ]; then on0=(taskset -c 0); on1=(taskset -c 1); fi

tmp=$(mktemp -d /tmp/rvbench-api.XXXXXX)
# The bench repos live here: the URL policy allows just this directory.
export REPOVIEW_ALLOW_LOCAL_PATHS="$tmp"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

"${on0[@]}" redis-server --port 0 --unixsocket "$tmp/redis.sock" --save '' --appendonly no --dir "$tmp" --logfile "$tmp/redis.log" &
pids+=($!)
wait_redis "$tmp/redis.sock"
export REPOVIEW_REDIS_URL="unix://$tmp/redis.sock" REPOVIEW_DATA_DIR="$tmp/data" REPOVIEW_LOG=warn

# A repo with N branches, synced once by a worker. `data` emits a
# fast-import data block with its exact byte count, so a message or file
# of any length stays in step with the stream.
data() { printf 'data %d\n%s\n' "${#1}" "$1"; }
make_repo() { # dir branches
  git init -q -b main "$1"
  ( cd "$1"
    { echo 'commit refs/heads/main'; echo 'mark :1'
      echo 'committer B <b@example.com> 1700000000 +0000'
      data base; echo 'M 644 inline f'; data base
      for i in $(seq 1 "$2"); do
        echo "commit refs/heads/feature/branch-$i"
        echo "committer B <b@example.com> $((1700000000 + i)) +0000"
        data "$(printf 'work on branch %05d' "$i")"; echo 'from :1'
        echo "M 644 inline file-$i.txt"; data "line $i"
      done; } | git fast-import --quiet )
}
make_repo "$tmp/r50" 49
make_repo "$tmp/r1000" 999
"$BUILD/repoview" add r50 --url "$tmp/r50" >/dev/null
"$BUILD/repoview" add r1000 --url "$tmp/r1000" >/dev/null
"$BUILD/repoview-worker" 2>"$tmp/worker.log" &
worker_pid=$!
for id in r50 r1000; do
  for _ in $(seq 600); do
    [ "$(redis-cli -s "$tmp/redis.sock" hget "rv:{$id}:meta" branch_sync_status)" = idle ] && break; sleep 0.1
  done
  [ "$(redis-cli -s "$tmp/redis.sock" hget "rv:{$id}:meta" branch_sync_status)" = idle ] ||
    { echo "bench_api: $id did not sync" >&2; exit 1; }
done
# Reads need no worker; stopped, it takes no CPU from the measurements.
kill "$worker_pid"; wait "$worker_pid" 2>/dev/null || true
redis_pid=${pids[0]}

api_port=$(free_port)
# TOKEN=1: reads need a token, so each request pays for checking it.
wrk_auth=(); api_env=()
if [ -n "${TOKEN:-}" ]; then
  tok="bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  printf 'sha256:%s read\n' "$(printf %s "$tok" | sha256sum | cut -c1-64)" > "$tmp/tokens"
  api_env=(REPOVIEW_TOKENS_FILE="$tmp/tokens")
  wrk_auth=(-H "Authorization: Bearer $tok")
fi
env "${api_env[@]}" REPOVIEW_LISTEN="127.0.0.1:$api_port" "${on0[@]}" "$BUILD/repoview-api" 2>"$tmp/api.log" &
api_pid=$!
pids+=($api_pid)
wait_http "http://127.0.0.1:$api_port/healthz"

# nginx serves the very bytes the API answers, as a static file, and the
# API's compressed bodies as precompressed files.
nginx -V 2>&1 | grep -q http_gzip_static_module ||
  { echo "bench_api: this nginx has no gzip_static" >&2; exit 1; }
mkdir -p "$tmp/www/br"
ov50="http://127.0.0.1:$api_port/v1/repos/r50/overview"
curl -sf "${wrk_auth[@]}" "$ov50" > "$tmp/www/overview.json"
curl -sf "${wrk_auth[@]}" -H 'Accept-Encoding: gzip' "$ov50" > "$tmp/www/overview.json.gz"
curl -sf "${wrk_auth[@]}" -H 'Accept-Encoding: br' "$ov50" > "$tmp/www/br/overview.json"
size=$(stat -c %s "$tmp/www/overview.json")
gz_size=$(stat -c %s "$tmp/www/overview.json.gz")
br_size=$(stat -c %s "$tmp/www/br/overview.json")
# What both sides send must decode to the same body.
cmp -s <(gzip -dc "$tmp/www/overview.json.gz") "$tmp/www/overview.json" ||
  { echo "bench_api: the API's gzip does not decode to its body" >&2; exit 1; }
ngx_port=$(free_port)
cat > "$tmp/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  default_type application/json;
  gzip_static on;
  gzip_vary on;
  etag on;
  server {
    listen 127.0.0.1:$ngx_port; root $tmp/www;
    location /br/ { add_header Content-Encoding br; add_header Vary Accept-Encoding; }
  }
}
NGX
# nginx's workers run as www-data: they must be able to read the files
# (mktemp makes the directory root's alone, and a 403 is not the same bytes).
chmod 711 "$tmp"
chmod -R a+rX "$tmp/www"
"${on0[@]}" nginx -c "$tmp/nginx.conf" -p "$tmp" &
pids+=($!)
sleep 0.5

# CPU ticks (utime + stime) of the given pids, summed.
ticks() { for p in "$@"; do awk '{print $14 + $15}' "/proc/$p/stat"; done | awk '{t += $1} END {print t + 0}'; }
hz=$(getconf CLK_TCK)
ngx_pids=$(pgrep -P "$(cat "$tmp/nginx.pid")" | tr '\n' ' ')

run_wrk() { # url pid... -> "rps p99ms cpu_us_per_request"
  local url=$1; shift
  local before; before=$(ticks "$@")
  local auth=()
  if [[ $url == *":$api_port/"* ]]; then auth=("${wrk_auth[@]}"); fi
  # AE=gzip|br run_wrk ...: the reads ask for that coding.
  if [ -n "${AE:-}" ]; then auth+=(-H "Accept-Encoding: $AE"); fi
  "${on1[@]}" wrk -t1 -c50 -d"$DURATION" --latency "${auth[@]}" "$url" > "$tmp/wrk.txt"
  local after; after=$(ticks "$@")
  awk -v ticks=$((after - before)) -v hz="$hz" '
    /requests in/ {n=$1}
    /Requests\/sec/ {rps=$2}
    /^ +99%/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; p99=v}
    END {printf "%.0f %.2f %.1f\n", rps, p99, n ? ticks / hz * 1e6 / n : 0}' "$tmp/wrk.txt"
}

# The coded rounds: name, coding, server ("api" or "ngx"), URL.
coded_rounds=(
  "agz gzip api $ov50" "ngz gzip ngx http://127.0.0.1:$ngx_port/overview.json"
  "abr br api $ov50" "nbr br ngx http://127.0.0.1:$ngx_port/br/overview.json"
)
# nginx must answer what the API does, or the comparison means nothing.
for check in "overview.json $size" "overview.json $gz_size gzip" "br/overview.json $br_size br"; do
  read -r file want enc <<< "$check"
  [ "$(curl -sf ${enc:+-H "Accept-Encoding: $enc"} "http://127.0.0.1:$ngx_port/$file" | wc -c)" = "$want" ] ||
    { echo "bench_api: nginx does not serve $file as $want bytes (${enc:-identity})" >&2; exit 1; }
done
declare -A c_rps c_p99 c_cpu
declare -a api_rps api_p99 api_cpu ngx_rps ngx_p99 ngx_cpu big_rps big_p99 big_cpu
for i in $(seq "$RUNS"); do
  for round in "${coded_rounds[@]}"; do
    read -r name enc who url <<< "$round"
    if [ "$who" = api ]; then pids_of=("$api_pid" "$redis_pid"); else read -ra pids_of <<< "$ngx_pids"; fi
    read -r r p c < <(AE=$enc run_wrk "$url" "${pids_of[@]}")
    c_rps[$name]+="$r "; c_p99[$name]+="$p "; c_cpu[$name]+="$c "
  done
  read -r r p c < <(run_wrk "http://127.0.0.1:$api_port/v1/repos/r50/overview" "$api_pid" "$redis_pid")
  api_rps+=("$r"); api_p99+=("$p"); api_cpu+=("$c")
  # shellcheck disable=SC2086
  read -r r p c < <(run_wrk "http://127.0.0.1:$ngx_port/overview.json" $ngx_pids)
  ngx_rps+=("$r"); ngx_p99+=("$p"); ngx_cpu+=("$c")
  read -r r p c < <(run_wrk "http://127.0.0.1:$api_port/v1/repos/r1000/overview" "$api_pid" "$redis_pid")
  big_rps+=("$r"); big_p99+=("$p"); big_cpu+=("$c")
done
A_RPS=$(m "${api_rps[@]}"); A_P99=$(m "${api_p99[@]}"); A_CPU=$(m "${api_cpu[@]}")
N_RPS=$(m "${ngx_rps[@]}"); N_P99=$(m "${ngx_p99[@]}"); N_CPU=$(m "${ngx_cpu[@]}")
B_RPS=$(m "${big_rps[@]}"); B_P99=$(m "${big_p99[@]}"); B_CPU=$(m "${big_cpu[@]}")
big_size=$(curl -s "${wrk_auth[@]}" "http://127.0.0.1:$api_port/v1/repos/r1000/overview" | wc -c)
ratio=$(awk -v a="$A_RPS" -v n="$N_RPS" 'BEGIN {printf "%.2f", a/n}')
declare -a pair
for i in "${!api_rps[@]}"; do
  pair+=("$(awk -v a="${api_rps[$i]}" -v n="${ngx_rps[$i]}" 'BEGIN {printf "%.3f", a/n}')")
done
PAIR=$(m "${pair[@]}")
each() { local IFS=' '; echo "$*"; }
echo
echo "| target | body | req/s (median of $RUNS) | p99 ms | server CPU µs/request |"
echo "|---|---|---|---|---|"
echo "| repoview-api (+ its Redis), 50 branches | $size B | $A_RPS | $A_P99 | $A_CPU |"
echo "| nginx, same bytes | $size B | $N_RPS | $N_P99 | $N_CPU |"
echo "| repoview-api (+ its Redis), 1,000 branches | $big_size B | $B_RPS | $B_P99 | $B_CPU |"
echo
echo "API / nginx requests per second: $PAIR, the median of adjacent rounds ($(each "${pair[@]}")); $ratio by the medians above (wrk -t1 -c50 -d$DURATION, $(nproc) cores)"
echo
echo "Every run (req/s, p99 ms, CPU µs/request): API 50 [$(each "${api_rps[@]}") | $(each "${api_p99[@]}") | $(each "${api_cpu[@]}")]; nginx [$(each "${ngx_rps[@]}") | $(each "${ngx_p99[@]}") | $(each "${ngx_cpu[@]}")]; API 1,000 [$(each "${big_rps[@]}") | $(each "${big_p99[@]}") | $(each "${big_cpu[@]}")]"

# ---- the compressed reads ----
# shellcheck disable=SC2086
cm() { m ${c_rps[$1]}; }
pair_of() { # api-name ngx-name: the median of the per-round ratios
  local -a a n r; read -ra a <<< "${c_rps[$1]}"; read -ra n <<< "${c_rps[$2]}"
  for i in "${!a[@]}"; do r+=("$(awk -v x="${a[$i]}" -v y="${n[$i]}" 'BEGIN {printf "%.3f", x/y}')"); done
  m "${r[@]}"
}
row() { # label body name
  # shellcheck disable=SC2086
  echo "| $1 | $2 B | $(cm "$3") | $(m ${c_p99[$3]}) | $(m ${c_cpu[$3]}) |"
}
echo
echo "| target (Accept-Encoding) | body | req/s (median of $RUNS) | p99 ms | server CPU µs/request |"
echo "|---|---|---|---|---|"
row "repoview-api, 50 branches (gzip)" "$gz_size" agz
row "nginx gzip_static, same bytes (gzip)" "$gz_size" ngz
row "repoview-api, 50 branches (br)" "$br_size" abr
row "nginx, the same .br with Content-Encoding: br" "$br_size" nbr
echo
echo "API / nginx requests per second, median of adjacent rounds: gzip $(pair_of agz ngz), br $(pair_of abr nbr)"
echo
echo "Every run (req/s): API gzip [${c_rps[agz]% }]; nginx gzip [${c_rps[ngz]% }]; API br [${c_rps[abr]% }]; nginx br [${c_rps[nbr]% }]"
echo
echo "| overview | identity | gzip | br |"
echo "|---|---|---|---|"
for id in r50 r1000; do
  w() { curl -s "${wrk_auth[@]}" ${1:+-H "Accept-Encoding: $1"} "http://127.0.0.1:$api_port/v1/repos/$id/overview" | wc -c; }
  echo "| $id | $(w '') B | $(w gzip) B | $(w br) B |"
done
# Every level on the real 1,000-branch body: what the API's levels were
# picked from (src/api/api.h).
curl -s "${wrk_auth[@]}" "http://127.0.0.1:$api_port/v1/repos/r1000/overview" > "$tmp/r1000.json"
cc -O2 -o "$tmp/compress_levels" bench/compress_levels.c -lbrotlienc -lz
echo
"${on0[@]}" "$tmp/compress_levels" "$tmp/r1000.json"
echo
# The time the API spent compressing, once per coding and overview.
curl -s "${wrk_auth[@]}" "http://127.0.0.1:$api_port/metrics" |
  awk '/^repoview_http_compress(ions_total|_seconds_total)\{/ {printf "%s ", $0} END {print ""}'
