#!/bin/sh
# The JS client's types: its JSDoc passes tsc --checkJs (strict), an app's
# use of them compiles (types-check.ts), and repoview-client.d.ts is what
# tsc declares from the JSDoc today (regenerate it with
#   tsc -p clients/js/tsconfig.dts.json --outDir clients/js
# after changing the module).
set -eu
src=$1
tsc=$src/tests/node_modules/.bin/tsc
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$tsc" -p "$src/clients/js/tsconfig.json"
"$tsc" -p "$src/clients/js/tsconfig.dts.json" --outDir "$out"
if ! cmp -s "$out/repoview-client.d.ts" "$src/clients/js/repoview-client.d.ts"; then
  diff -u "$src/clients/js/repoview-client.d.ts" "$out/repoview-client.d.ts" | head -40
  echo "clients/js/repoview-client.d.ts is out of date" >&2
  exit 1
fi
echo "types ok"
