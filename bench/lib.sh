# Shared by the benchmarks (bench_api.sh, bench_sse.sh, bench_scale.sh and
# others); source it from the repository root.

# bench_build NAME BUILD_DIR: makes sure BUILD_DIR is a non-sanitizer build
# of repoview-api, repoview and repoview-worker, configuring it when it is
# new. A sanitizer build would measure ASan, not repoview, so it is refused
# (exit 2) rather than reconfigured under the caller's feet. NAME prefixes
# the message.
bench_build() {
  local name=$1 build=$2
  if [ -f "$build/CMakeCache.txt" ] &&
     grep -q '^RV_SANITIZE:BOOL=ON' "$build/CMakeCache.txt"; then
    echo "$name: $build is a sanitizer build; give a RelWithDebInfo one" >&2
    exit 2
  fi
  if [ ! -f "$build/CMakeCache.txt" ]; then
    # GCC 12's -Wformat-truncation at -O2 flags bounded snprintf calls; a
    # warning must not stop a benchmark.
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DRV_SANITIZE=OFF -DRV_TESTS=OFF \
      -DCMAKE_C_FLAGS=-Wno-error=format-truncation >/dev/null
  fi
  cmake --build "$build" -j2 --target repoview-api repoview repoview-worker \
    >/dev/null
}

# wait_redis SOCKET: waits up to 5 s for the Redis on that unix socket to
# answer PING.
wait_redis() {
  for _ in $(seq 100); do redis-cli -s "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
  return 1
}

# wait_http URL: waits up to 5 s for URL to answer 2xx.
wait_http() {
  for _ in $(seq 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.05; done
  return 1
}

# free_port: a TCP port on 127.0.0.1 that was free a moment ago.
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# median: the median of the numbers on stdin, one a line.
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# m VALUE...: the median of its arguments.
m() { printf '%s\n' "$@" | median; }

# bench_driver BUILD_DIR SOURCE OUT: builds a benchmark driver that links
# the worker's and common libraries of BUILD_DIR (a non-sanitizer build,
# made by bench_build, which also builds the binaries).
bench_driver() {
  local build=$1 src=$2 out=$3
  bench_build "$(basename "$src")" "$build"
  cc -O2 -std=c11 -Wall -Wextra -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
    -Isrc -I"$build/generated" "$src" -L"$build" -lrvworker -lrvcommon \
    $(pkg-config --libs libgit2 libcurl jansson hiredis libevent msgpack libcrypto zlib) \
    -lpthread -lm -o "$out"
}

# fake_github_start DIR TOKEN: starts the loopback fake GitHub
# (tests/fake-github) wanting bearer TOKEN, with its output in DIR; sets
# fake to its base URL and adds its processes to the caller's pids array.
# The fake stops when its stdin closes: a fifo held open keeps it.
fake_github_start() {
  local dir=$1 token=$2
  mkfifo "$dir/fake.in"
  sleep 100000 >"$dir/fake.in" &
  pids+=($!)
  node tests/fake-github/server.mjs --token "$token" --lifetime-minutes 60 \
    <"$dir/fake.in" >"$dir/fake.out" &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$dir/fake.out" ] && break; sleep 0.05; done
  fake=http://127.0.0.1:$(head -1 "$dir/fake.out" | tr -dc 0-9)
}
