#!/usr/bin/env bash
# Latency of the operations views with a large registry: 10,000 repos, all
# of them with a job waiting in rv:queue (the worst case: every repo queued
# at once), 3 workers with a lease and a running job, 1,000 dead letters
# and a full day of per-minute history. Times N sequential requests of each
# view with curl (a new connection each, as a polling dashboard might) and
# prints the median and p95 of curl's time_total in ms.
#
#   bench/bench_ops.sh [BUILD_DIR]   (default build-apibench, a non-sanitizer
#                                     build, configured and built if needed;
#                                     env REPOS=10000 N=50)
#
# Loopback only; bounded runs. Take /tmp/rv-bench.lock on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-apibench}
REPOS=${REPOS:-10000}
N=${N:-50}
. bench/lib.sh
bench_build bench_ops "$BUILD"
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
sock=$tmp/redis.sock
redis-server --port 0 --unixsocket "$sock" --dir "$tmp" --save '' \
  --appendonly no >/dev/null &
wait_redis "$sock"
port=$(free_port)
REPOVIEW_REDIS_URL="unix://$sock" REPOVIEW_LISTEN="127.0.0.1:$port" \
  REPOVIEW_LOG=warn "$BUILD/repoview-api" 2>"$tmp/api.log" &
wait_http "http://127.0.0.1:$port/readyz"

# The data, written as Redis protocol: MessagePack jobs as the job codec
# encodes them (src/common/job.c), meta hashes, leases, history.
python3 - "$REPOS" <<'PY' >"$tmp/load.resp"
import os, struct, sys, time, json
n = int(sys.argv[1]); now = int(time.time() * 1000)
out = sys.stdout.buffer
def cmd(*args):
    out.write(b'*%d\r\n' % len(args))
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.write(b'$%d\r\n%s\r\n' % (len(a), a))
def s(x):
    x = x.encode(); return bytes([0xa0 | len(x)]) + x
def job(repo, i):
    jid = 'j-%x-%016x' % (now, i)
    return (b'\x87' + s('v') + b'\x01' + s('id') + s(jid) + s('repo') + s(repo)
            + s('kind') + s('branches') + s('reason') + s('user')
            + s('at') + b'\xcf' + struct.pack('>Q', now - i)
            + s('attempt') + b'\x00')
for i in range(n):
    r = 'repo%05d' % i
    cmd('SADD', 'rv:repos', r)
    cmd('HSET', 'rv:{%s}:meta' % r, 'id', r, 'url', 'https://example.com/%s.git' % r,
        'branch_sync_status', 'queued')
    cmd('RPUSH', 'rv:queue', job(r, i))
for w in range(3):
    cmd('ZADD', 'rv:leases', now + 600000, 'w%d' % w)
    cmd('HSET', 'rv:worker:w%d' % w, 'host', 'h', 'pid', w, 'startedAt', now,
        'syncsDone', 5, 'syncsFailed', 1)
    cmd('RPUSH', 'rv:processing:w%d' % w, job('repo%05d' % w, n + w))
for i in range(1000):
    cmd('LPUSH', 'rv:deadletter', json.dumps({'reason': 'attempts exhausted',
        'worker': 'w9', 'at': '2026-12-07T10:00:00.000Z',
        'job': {'repo': 'repo%05d' % i, 'kind': 'branches'}}))
minute = now // 60000
for m in range(minute - 1440, minute + 1):
    cmd('HSET', 'rv:stats:%d' % m, 'done:branches', 40, 'failed:branches', 2,
        'done:prs', 10, 'ms:branches:3', 30, 'ms:branches:5', 12, 'queue', 17)
PY
redis-cli -s "$sock" --pipe <"$tmp/load.resp" >/dev/null

base="http://127.0.0.1:$port"
echo "| view ($REPOS repos queued) | median ms | p95 ms | bytes |"
echo "|---|---|---|---|"
for path in /v1/queue /v1/workers '/v1/deadletters?limit=100' \
            '/v1/stats?window=1h' '/v1/stats?window=24h'; do
  for _ in $(seq "$N"); do
    curl -s -o "$tmp/body" -w '%{time_total}\n' "$base$path"
  done | sort -n >"$tmp/times"
  awk -v n="$N" -v p="$path" -v b="$(wc -c <"$tmp/body")" '
    { t[NR] = $1 * 1000 }
    END { printf "| `%s` | %.1f | %.1f | %d |\n", p, t[int((n + 1) / 2)],
          t[int(n * 0.95 + 0.5)], b }' "$tmp/times"
  if [ "$path" = /v1/queue ] && grep -q undecodable "$tmp/body"; then
    echo "bench_ops: the queue's jobs did not decode" >&2
    exit 1
  fi
done
