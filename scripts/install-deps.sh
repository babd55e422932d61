#!/usr/bin/env bash
# Installs the Debian 12 packages repoview needs, only those that are missing.
# Runs `apt-get update` once, and only when something has to be installed.
# Usage: scripts/install-deps.sh [--browser]
#   --browser  also installs what the rest of `make test` needs: chromium for
#              the browser tests, clang and libFuzzer for tests/fuzz.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libhiredis-dev libevent-dev libgit2-dev libcurl4-openssl-dev
  libmsgpack-dev libjansson-dev libssl-dev libbrotli-dev zlib1g-dev
  redis-server redis-tools curl
)
if [ "${1:-}" = "--browser" ]; then
  packages+=(chromium)
  # Debian's clang does not pull in libFuzzer: it lives in libclang-rt-14-dev
  # (libclang_rt.fuzzer-x86_64.a), only a Recommends of clang-14's deps.
  packages+=(clang libclang-rt-14-dev)
  # Node may come from elsewhere (with npm bundled); only install Debian's
  # when there is none, since its npm package conflicts with such a node.
  command -v node >/dev/null || packages+=(nodejs)
  command -v npm >/dev/null || packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
