#!/usr/bin/env bash
# Branch facts on a real repository against the git CLI as oracle (issue
# 19). Takes a git directory (a bare mirror such as the fetch tool's
# /work/.mirror/<owner>+<name>/repo, or any clone), copies its branches
# and, with PULLS=1, its pull-request heads (refs/pull/N/head as branch
# pull/N) into a bare repo of its own, syncs that once with
# bench/bench_branchsync.c (one rv_branchsync_run: the clone, then every
# branch) under /usr/bin/time -v, and compares every branch row with
#   git rev-list --left-right --count DEFAULT...B     (ahead, behind)
#   git merge-tree --write-tree --name-only DEFAULT B (conflicts, files)
#   git diff --shortstat DEFAULT...B                  (diff stat)
# and the first clone with `git clone --mirror --no-local`.
#
#   bench/oracle_real.sh GIT_DIR   (env: BUILD=build-bench PULLS=0 MAX=0
#                                   (0 = every branch), SHOW=10 mismatches
#                                   listed per fact)
#
# Prints Markdown for docs/benchmarks.md. Not part of ctest. Take
# /tmp/rv-bench.lock around it on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(cd "$1" && pwd)
BUILD=${BUILD:-build-bench}
PULLS=${PULLS:-0}
MAX=${MAX:-0}
SHOW=${SHOW:-10}
export LC_ALL=C

tmp=$(mktemp -d /tmp/rvbench-oracle.XXXXXX)
export REPOVIEW_ALLOW_LOCAL_PATHS="$tmp"
trap 'rm -rf "$tmp"' EXIT
. bench/lib.sh
bench_driver "$BUILD" bench/bench_branchsync.c "$tmp/driver"

# The repo under test: the source's branches (and pull heads), its default
# branch as HEAD.
git init -q --bare "$tmp/src.git"
specs=('+refs/heads/*:refs/heads/*')
[ "$PULLS" = 1 ] && specs+=('+refs/pull/*/head:refs/heads/pull/*')
git -C "$tmp/src.git" fetch -q --no-tags "$SRC" "${specs[@]}"
head=$(git -C "$SRC" symbolic-ref -q HEAD || echo refs/heads/main)
git -C "$tmp/src.git" symbolic-ref HEAD "$head"
if [ "$MAX" -gt 0 ]; then
  # Every k-th of the other branches, so the sample spans the history.
  git -C "$tmp/src.git" for-each-ref --format='%(refname)' refs/heads |
    grep -vx "$head" | awk -v max="$MAX" '{r[NR] = $0} END {
      k = NR / max; if (k < 1) k = 1
      for (i = 1; i <= NR; i++) if (int((i - 1) % k) != 0 || i > max * k) print "delete " r[i] }' |
    git -C "$tmp/src.git" update-ref --stdin
fi
nrefs=$(git -C "$tmp/src.git" for-each-ref refs/heads | wc -l)
git -C "$tmp/src.git" gc -q --prune=now 2>/dev/null || true
pack_mb=$(du -sm "$tmp/src.git/objects" | cut -f1)

peak() { awk -F: '/Maximum resident/ {gsub(/ /, "", $2); printf "%.0f", $2 / 1024}' "$1"; }
wall() { awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.1f", s}' "$1"; }

/usr/bin/time -v "$tmp/driver" "$tmp/data" "$tmp/src.git" - "$tmp/doc.json" \
  >"$tmp/driver.out" 2>"$tmp/driver.time" ||
  { cat "$tmp/driver.out" "$tmp/driver.time" >&2; exit 1; }
/usr/bin/time -v git clone -q --mirror --no-local "$tmp/src.git" "$tmp/cli.git" \
  2>"$tmp/cli.time"

python3 - "$tmp/src.git" "$tmp/doc.json" "$SHOW" <<'EOF'
import concurrent.futures, json, re, subprocess, sys

repo, doc_path, show = sys.argv[1], sys.argv[2], int(sys.argv[3])
doc = json.load(open(doc_path))
rows = doc["branches"]
default = next(r for r in rows if r["isDefault"])
base = default["sha"]

def git(*args):
    p = subprocess.run(["git", "-C", repo] + list(args), capture_output=True, text=True)
    return p.returncode, p.stdout

def oracle(row):
    b = row["sha"]
    out = {"name": row["name"]}
    rc, text = git("merge-base", base, b)
    if rc != 0:
        out["unrelated"] = True
        return out
    out["unrelated"] = False
    rc, text = git("rev-list", "--left-right", "--count", base + "..." + b)
    behind, ahead = map(int, text.split())
    out["ahead"], out["behind"] = ahead, behind
    rc, text = git("merge-tree", "--write-tree", "--name-only", base, b)
    if rc not in (0, 1):
        out["merge_error"] = text.strip()[:200]
    out["conflicts"] = rc == 1
    files = []
    if rc == 1:
        for line in text.split("\n")[1:]:
            if not line:
                break
            files.append(line)
    out["files"] = sorted(set(files))
    rc, text = git("diff", "--shortstat", base + "..." + b)
    n = lambda word: int((re.search(r"(\d+) " + word, text) or [0, 0])[1])
    out["stat"] = (n("file"), n("insertion"), n("deletion"))
    return out

others = [r for r in rows if not r["isDefault"]]
with concurrent.futures.ThreadPoolExecutor(2) as ex:
    truth = list(ex.map(oracle, others))

facts = {"unrelated": 0, "ahead/behind": 0, "conflicts": 0, "conflict files": 0, "diff stat": 0}
related = 0
wrong = {k: [] for k in facts}
for row, t in zip(others, truth):
    def check(fact, ok, detail):
        if ok:
            facts[fact] += 1
        else:
            wrong[fact].append("%s: %s" % (row["name"], detail))
    check("unrelated", bool(row.get("unrelated")) == t["unrelated"],
          "service %s, git %s" % (row.get("unrelated"), t["unrelated"]))
    if t["unrelated"] or row.get("unrelated"):
        continue
    related += 1
    check("ahead/behind", (row["ahead"], row["behind"]) == (t["ahead"], t["behind"]),
          "service %d/%d, git %d/%d" % (row["ahead"], row["behind"], t["ahead"], t["behind"]))
    check("conflicts", row["conflicts"] == t["conflicts"],
          "service %s, git %s" % (row["conflicts"], t["conflicts"]))
    if row["conflicts"] and t["conflicts"]:
        mine = sorted(set(row["conflictFiles"]))
        theirs = t["files"][:len(mine)] if len(mine) >= 50 else t["files"]
        check("conflict files", mine == theirs,
              "service %s, git %s" % (mine[:5], theirs[:5]))
    else:
        facts["conflict files"] += 1
    s = row["diffStat"]
    mine = (s["files"], s["additions"], s["deletions"])
    check("diff stat", mine == t["stat"], "service %s, git %s" % (mine, t["stat"]))

print("| fact | branches agreeing with git | of |")
print("|---|---:|---:|")
for fact, n in facts.items():
    of = len(others) if fact == "unrelated" else related
    print("| %s | %d | %d |" % (fact, n, of))
for fact, lines in wrong.items():
    if lines:
        print("\n%s differs on %d:" % (fact, len(lines)))
        for line in lines[:show]:
            print("- " + line)
EOF
echo
echo "- $nrefs branches, objects ${pack_mb} MB after gc; default $head"
echo "- first sync (clone + every branch), one rv_branchsync_run: $(wall "$tmp/driver.time") s, peak RSS $(peak "$tmp/driver.time") MB ($(cat "$tmp/driver.out"))"
echo "- git clone --mirror --no-local of the same repo: $(wall "$tmp/cli.time") s, peak RSS $(peak "$tmp/cli.time") MB"
echo "- $(nproc) cores, $(git --version), $(date -u +%F)"
