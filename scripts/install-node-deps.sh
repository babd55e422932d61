#!/usr/bin/env bash
# Installs the npm packages the SSE and browser tests use (tests/package.json)
# into tests/node_modules, only when they are missing.
set -euo pipefail
cd "$(dirname "$0")/../tests"
[ -f package.json ] || exit 0
if [ -d node_modules ] && [ node_modules -nt package.json ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "install-node-deps: npm is missing" >&2; exit 1; }
npm install --no-audit --no-fund --loglevel=error
touch node_modules
