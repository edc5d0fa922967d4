#!/usr/bin/env bash
# Sets up, builds (release) and serves Chancery on its embedded default: a SQLite
# file under data/, created and migrated on first start. Nothing else to install.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"

cargo leptos build --release --precompress
export LEPTOS_SITE_ROOT="${LEPTOS_SITE_ROOT:-target/site}"
exec target/release/chancery serve "$@"
