#!/usr/bin/env bash
# The style check must find what it claims to find: a tree with one of
# each finding fails with exactly those findings, the same tree mended
# passes. Without this, a broken checksrc.sh would pass every tree.
#
#   tests/style/checksrc_selftest.sh CHECKSRC
set -euo pipefail
checksrc=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src/common" "$tmp/tests/unit" "$tmp/tools" "$tmp/bench"
long=$(printf 'x%.0s' $(seq 1 90))
{
  printf 'int a; /* %s */\n' "$long"
  printf 'static void f(char *d) { sprintf(d, "%%d", 1); }\n'
  printf 'static void g(char *d) { strcpy(d, "sprintf(x)"); }\n'
  printf 'static int h(const char *s) { return atoi(s); }\n'
  printf '\tint tabbed;\n'
  printf 'int trailing; \n'
  printf '/* checksrc: wide */\n'
  printf 'int wide_table; /* %s */\n' "$long"
  printf '/* checksrc: end */\n'
  printf 'int snprintf_is_fine(char *d) { return snprintf(d, 1, "x"); }\n'
} >"$tmp/src/common/bad.c"
set +e
out=$("$checksrc" "$tmp" 2>&1)
rc=$?
set -e
echo "$out"
fail() { echo "checksrc_selftest: $*" >&2; exit 1; }
[ "$rc" -eq 1 ] || fail "expected exit 1 on a bad tree, got $rc"
for want in 'bad.c:1: line longer than 80 columns' \
            'bad.c:2: banned function sprintf()' \
            'bad.c:3: banned function strcpy()' \
            'bad.c:4: banned function atoi()' \
            'bad.c:5: tab' 'bad.c:6: trailing white space' \
            'checksrc: 6 finding(s)'; do
  grep -qF "$want" <<<"$out" || fail "missing finding: $want"
done
# Long lines are allowed in tests/, and a clean tree passes.
printf 'int t; /* %s */\n' "$long" >"$tmp/tests/unit/long.c"
printf 'int ok;\n' >"$tmp/src/common/bad.c"
"$checksrc" "$tmp" || fail "a clean tree was refused"
echo "checksrc_selftest: ok"
