#!/usr/bin/env bash
# Branch sync benchmark: a generated repo with a 2,000-commit main and 1,000
# branches forked from various points of main (1-3 commits each; about a
# quarter rewrite a file main changed later, so they conflict). Per run:
#   (a) a full sync from nothing (clone included): wall time and peak RSS of
#       bench/bench_branchsync.c, one rv_branchsync_run, via /usr/bin/time -v;
#   (b) a re-sync with nothing changed (the previous document as prev);
#   (c) the per-branch git CLI approach on the same repo: for every branch
#       git rev-list --left-right --count, git merge-tree --write-tree and
#       git diff --shortstat (no fetch counted: favours the CLI).
# Prints medians of RUNS runs and the ratios as Markdown for
# docs/benchmarks.md. Not part of ctest.
#
#   bench/bench_branchsync.sh   (env: BUILD=build-bench RUNS=3 BRANCHES=1000
#                                COMMITS=2000 URL=git|file)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
RUNS=${RUNS:-3}
BRANCHES=${BRANCHES:-1000}
COMMITS=${COMMITS:-2000}
export LC_ALL=C

tmp=$(mktemp -d /tmp/rvbench-branchsync.XXXXXX)
# The bench repos live here: the URL policy allows just this directory.
export REPOVIEW_ALLOW_LOCAL_PATHS="$tmp"
daemon_pid=
cleanup() { [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

# A normal (non-sanitizer, -O2) build of the libraries, and the driver on
# top.
. bench/lib.sh
bench_driver "$BUILD" bench/bench_branchsync.c "$tmp/driver"

# The repo, written as a git fast-import stream (seconds, not minutes).
gen_start=$(date +%s%N)
git init -q --bare -b main "$tmp/src.git"
awk -v commits="$COMMITS" -v branches="$BRANCHES" '
function content(f, tag, n,   s, j) {
  s = ""
  for (j = 0; j < 20; j++)
    s = s (j == n % 20 ? tag : "file " f " line " j) "\n"
  return s
}
function file_name(i) { return sprintf("d%02d/f%02d.txt", i % 20, int(i / 20)) }
function emit_file(path, data) {
  printf "M 100644 inline %s\ndata %d\n%s\n", path, length(data), data
}
function header(ref, mark, t, msg) {
  printf "commit %s\n", ref
  if (mark) printf "mark :%d\n", mark
  printf "author Dev %d <dev@example.com> %d +0000\n", t % 7, t
  printf "committer Dev <dev@example.com> %d +0000\n", t
  printf "data %d\n%s\n", length(msg), msg
}
BEGIN {
  srand(42); t0 = 1700000000
  header("refs/heads/main", 1, t0, "Initial import")
  for (i = 0; i < 1000; i++) emit_file(file_name(i), content(file_name(i), "", -1))
  for (c = 2; c <= commits; c++) {
    header("refs/heads/main", c, t0 + c * 60, "Main commit " c)
    k = 1 + int(rand() * 3)
    for (m = 0; m < k; m++) {
      f = file_name(int(rand() * 1000))
      emit_file(f, content(f, "main change " c, c + m))
    }
  }
  for (b = 1; b <= branches; b++) {
    fork = 1 + int(rand() * commits)
    ref = sprintf("refs/heads/feature/b%04d", b)
    n = 1 + int(rand() * 3)
    for (c = 1; c <= n; c++) {
      header(ref, 0, t0 + fork * 60 + c * 7, "Branch " b " commit " c)
      if (c == 1) printf "from :%d\n", fork
      if (rand() < 0.35) {
        f = file_name(int(rand() * 1000))
        emit_file(f, content(f, "branch " b " change " c, b + c))
      } else {
        emit_file(sprintf("new/b%04d/c%d.txt", b, c), content("new", "branch " b, c))
      }
    }
  }
}' | git -C "$tmp/src.git" fast-import --quiet
# fast-import leaves a loose file per branch; a real server's refs are
# packed (git gc does it), and the server reads them for every ref
# advertisement. The CLI's bare clone below has packed refs too.
git -C "$tmp/src.git" pack-refs --all
gen_ms=$(( ($(date +%s%N) - gen_start) / 1000000 ))
git clone -q --bare "$tmp/src.git" "$tmp/cli.git"

# The remote is served by git daemon: the server side builds the pack as a
# real remote would. (A file:// URL uses libgit2's local transport, which
# builds and delta-compresses a pack in-process: see URL=file below.)
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
git daemon --export-all --base-path="$tmp" --reuseaddr --listen=127.0.0.1 --port="$port" "$tmp" 2>/dev/null &
daemon_pid=$!
for _ in $(seq 100); do git ls-remote "git://127.0.0.1:$port/src.git" HEAD >/dev/null 2>&1 && break; sleep 0.05; done
url="git://127.0.0.1:$port/src.git"
[ "${URL:-git}" = file ] && url="file://$tmp/src.git"

median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
field() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" "$2"; }

: >"$tmp/full_ms"; : >"$tmp/clone_ms"; : >"$tmp/rss_kb"; : >"$tmp/resync_ms"; : >"$tmp/cli_ms"
for run in $(seq "$RUNS"); do
  rm -rf "$tmp/data"
  /usr/bin/time -v -o "$tmp/time.txt" "$tmp/driver" "$tmp/data" "$url" - "$tmp/doc.json" >"$tmp/full.json"
  field total_ms "$tmp/full.json" >>"$tmp/full_ms"
  field fetch_ms "$tmp/full.json" >>"$tmp/clone_ms"
  sed -n 's/.*Maximum resident set size (kbytes): //p' "$tmp/time.txt" >>"$tmp/rss_kb"
  "$tmp/driver" "$tmp/data" "$url" "$tmp/doc.json" >"$tmp/resync.json"
  field total_ms "$tmp/resync.json" >>"$tmp/resync_ms"
  [ "$(field reused "$tmp/resync.json")" = "$(field branches "$tmp/resync.json")" ] || {
    echo "re-sync recomputed rows: $(cat "$tmp/resync.json")" >&2; exit 1; }

  start=$(date +%s%N)
  git -C "$tmp/cli.git" for-each-ref --format='%(refname:strip=2)' refs/heads/ |
  while read -r b; do
    git -C "$tmp/cli.git" rev-list --left-right --count "main...$b" >/dev/null
    git -C "$tmp/cli.git" merge-tree --write-tree main "$b" >/dev/null || [ $? -eq 1 ]
    git -C "$tmp/cli.git" diff --shortstat "main...$b" >/dev/null
  done
  echo $(( ($(date +%s%N) - start) / 1000000 )) >>"$tmp/cli_ms"
  echo "run $run: full $(tail -1 "$tmp/full_ms") ms, re-sync $(tail -1 "$tmp/resync_ms") ms, CLI $(tail -1 "$tmp/cli_ms") ms" >&2
done

full=$(median <"$tmp/full_ms"); clone=$(median <"$tmp/clone_ms"); rss=$(median <"$tmp/rss_kb")
resync=$(median <"$tmp/resync_ms"); cli=$(median <"$tmp/cli_ms")
rows=$(field branches "$tmp/full.json"); conflicting=$(field conflicting "$tmp/full.json")
cat <<MD
Repo: $COMMITS commits on main, $BRANCHES branches ($rows rows, $conflicting conflicting), generated with git fast-import in ${gen_ms} ms.
Machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1); $(git --version), libgit2 $(pkg-config --modversion libgit2).
Medians of $RUNS runs, from \`bench/bench_branchsync.sh\`:

| measure | median | ratio |
|---|---:|---:|
| (a) full sync, clone included (remote: $url) | ${full} ms | 1 |
| (a) of which the clone | ${clone} ms | |
| (a) peak RSS of the full sync | $((rss / 1024)) MiB | |
| (b) re-sync, nothing changed | ${resync} ms | $(awk -v a="$resync" -v b="$full" 'BEGIN {printf "%.1f%% of (a)", 100 * a / b}') |
| (c) per-branch git CLI (3 commands per branch, no fetch) | ${cli} ms | $(awk -v a="$cli" -v b="$full" 'BEGIN {printf "%.1fx (a)", a / b}') |
MD
