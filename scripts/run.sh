#!/usr/bin/env bash
# Sets up, builds and serves Chancery on its embedded default: a SQLite file
# under data/, created and migrated on first start. Nothing else to install.
#
#   scripts/run.sh            a development build: the first page soonest
#   scripts/run.sh --release  the optimised build production runs (about 6 more
#                             minutes the first time), with precompressed assets
#
# Anything else is passed to `chancery serve` (see `--help`).
set -euo pipefail
cd "$(dirname "$0")/.."
release=false
if [[ "${1:-}" == "--release" ]]; then
  release=true
  shift
fi
scripts/setup.sh
export PATH="$PWD/tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"

if $release; then
  cargo leptos build --release --precompress
  chancery=target/release/chancery
else
  cargo leptos build
  chancery=target/debug/chancery
  echo "A development build: scripts/run.sh --release builds the optimised one."
fi
export LEPTOS_SITE_ROOT="${LEPTOS_SITE_ROOT:-target/site}"
exec "$chancery" serve "$@"
