#!/usr/bin/env bash
# Sets up, builds and serves Chancery on its embedded default: a SQLite file
# under data/, created and migrated on first start. Nothing else to install.
#
#   scripts/run.sh            a development build: the first page soonest
#   scripts/run.sh --release  the optimised build production runs, by cargo-leptos
#                             (installed the first time: about 7 more minutes),
#                             with precompressed assets
#
# Anything else is passed to `chancery serve` (see `--help`).
set -euo pipefail
cd "$(dirname "$0")/.."
release=false
if [[ "${1:-}" == "--release" ]]; then
  release=true
  shift
fi
export PATH="$PWD/tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"

# The steps `cargo leptos build` takes for a development build, without
# cargo-leptos: compiling it takes as long as compiling Chancery. The same
# flags, environment and folders as cargo-leptos, so either reuses the other's
# work; the stylesheet is served as written rather than through lightningcss.
build_development() {
  export RUSTFLAGS="--cfg erase_components" LEPTOS_OUTPUT_NAME=chancery
  cargo build --package frontend --lib --no-default-features --target wasm32-unknown-unknown \
    --target-dir target/front &
  local front=$!
  cargo build --package server --bin chancery --no-default-features
  wait "$front"
  local pkg=target/site/pkg
  rm -rf target/site
  mkdir -p "$pkg"
  cp -R public/. target/site/
  wasm-bindgen --target web --out-name chancery --out-dir "$pkg" \
    target/front/wasm32-unknown-unknown/debug/frontend.wasm
  mv "$pkg/chancery_bg.wasm" "$pkg/chancery.wasm"
  cp style/main.css "$pkg/chancery.css"
  # Left by a `cargo leptos build`, it would make the server ask for hashed names.
  rm -f target/debug/hash.txt
}

if $release; then
  scripts/setup.sh --release
  cargo leptos build --release --precompress
  chancery=target/release/chancery
else
  scripts/setup.sh
  build_development
  chancery=target/debug/chancery
  echo "A development build: scripts/run.sh --release builds the optimised one."
fi
export LEPTOS_SITE_ROOT="${LEPTOS_SITE_ROOT:-target/site}"
exec "$chancery" serve "$@"
