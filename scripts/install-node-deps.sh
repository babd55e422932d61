#!/usr/bin/env bash
# Installs the npm packages the Node tests use (tests/package.json), exactly
# as tests/package-lock.json pins them, into tests/node_modules, only when
# they are missing or older than the lock file. The stamp is the lock npm
# writes inside node_modules, so that an emptied node_modules (its own
# mtime new) is installed again.
set -euo pipefail
cd "$(dirname "$0")/../tests"
[ -f package.json ] || exit 0
stamp=node_modules/.package-lock.json
if [ -f "$stamp" ] && [ "$stamp" -nt package.json ] &&
   [ "$stamp" -nt package-lock.json ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "install-node-deps: npm is missing" >&2; exit 1; }
npm ci --no-audit --no-fund --loglevel=error
touch "$stamp"
